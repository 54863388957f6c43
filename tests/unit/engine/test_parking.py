"""KVParking: one state per conversation, least recently parked out first, within budget."""

from __future__ import annotations

from llamaql.engine.local.parking import KVParking, ParkedState, common_prefix
from llamaql.ports.engine import Requester

ALICE_X = Requester("alice", "x")
ALICE_Y = Requester("alice", "y")
BOB_X = Requester("bob", "x")


def state(size: int, *tokens: int) -> ParkedState:
    return ParkedState(tokens, bytearray(size))


def test_states_are_kept_per_requester_and_taken_once() -> None:
    parking = KVParking(100)
    assert parking.park(ALICE_X, state(10, 1, 2))
    assert parking.take(BOB_X) is None  # another user's same conversation id
    assert parking.take(ALICE_Y) is None  # the same user's other conversation
    taken = parking.take(ALICE_X)
    assert taken is not None
    assert taken.tokens == (1, 2)
    assert parking.take(ALICE_X) is None
    assert (len(parking), parking.nbytes) == (0, 0)


def test_the_least_recently_parked_leaves_first_within_the_budget() -> None:
    parking = KVParking(100)
    for owner in (ALICE_X, ALICE_Y, BOB_X):
        assert parking.park(owner, state(40))
    assert parking.take(ALICE_X) is None  # evicted to make room for BOB_X
    assert (len(parking), parking.nbytes) == (2, 80)
    assert parking.park(ALICE_Y, state(30))  # replaces its own older state
    assert (len(parking), parking.nbytes) == (2, 70)


def test_a_state_larger_than_the_budget_is_not_kept() -> None:
    parking = KVParking(100)
    assert parking.park(ALICE_X, state(50))
    assert not parking.park(ALICE_X, state(101))
    assert (len(parking), parking.nbytes) == (0, 0)
    assert not KVParking(0).park(ALICE_X, state(1))


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2]) == 2

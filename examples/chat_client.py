"""A minimal llamaql client: create a conversation and stream a reply over WebSocket.

Uses gql's websockets transport speaking graphql-transport-ws; the user is named in
the connection_init payload (X-User-ID). Run it against `make run`:

    .venv/bin/python examples/chat_client.py "What is the capital of France?"
    .venv/bin/python examples/chat_client.py --cancel-after 5 "Write a long story"

Ctrl-C while a reply streams closes the subscription, which was sent with
`cancelOnClose: true`: the server cancels the reply and keeps the text produced so far
(status CANCELLED). Without it the reply would run on to its end.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

CREATE = gql("mutation { createConversation { id } }")
SEND = gql("""
subscription Send($conversationId: ID!, $text: String!, $options: GenerationOptionsInput) {
  sendMessage(
    conversationId: $conversationId, text: $text, options: $options, cancelOnClose: true
  ) {
    __typename
    ... on MessageQueued { assistantMessageId position }
    ... on TokenDelta { text }
    ... on MessageCompleted {
      message { status finishReason usage { completionTokens tokensPerSecond } }
    }
    ... on MessageFailed { code reason retryable }
  }
}
""")
CANCEL = gql("mutation Cancel($id: ID!) { cancelGeneration(messageId: $id) }")


async def chat(args: argparse.Namespace) -> None:
    transport = WebsocketsTransport(
        url=args.url,
        init_payload={"X-User-ID": args.user},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # graphql-transport-ws
    )
    async with Client(transport=transport) as session:
        conversation = args.conversation
        if conversation is None:
            conversation = (await session.execute(CREATE))["createConversation"]["id"]
            print(f"conversation {conversation} (user {args.user})")
        variables = {
            "conversationId": conversation,
            "text": args.text,
            "options": {"maxTokens": args.max_tokens, "seed": args.seed},
        }
        deltas = 0
        async for result in session.subscribe(SEND, variable_values=variables):
            event = result["sendMessage"]
            kind = event["__typename"]
            if kind == "MessageQueued":
                reply_id = event["assistantMessageId"]
                print(f"[queued at position {event['position']}]", flush=True)
            elif kind == "TokenDelta":
                print(event["text"], end="", flush=True)
                deltas += 1
                if deltas == args.cancel_after:
                    cancelled = await session.execute(CANCEL, variable_values={"id": reply_id})
                    print(f"\n[cancelGeneration: {cancelled['cancelGeneration']}]")
            elif kind == "MessageCompleted":
                message = event["message"]
                print(
                    f"\n[{message['status']}, finish {message['finishReason']}, "
                    f"usage {message['usage']}]"
                )
            else:
                print(
                    f"\n[failed: {event['code']}: {event['reason']} "
                    f"(retryable: {event['retryable']})]"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", help="the message to send")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/graphql")
    parser.add_argument("--user", default=str(uuid.uuid4()), help="X-User-ID (a UUID)")
    parser.add_argument("--conversation", help="continue this conversation id")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--cancel-after", type=int, help="cancelGeneration after N pieces")
    try:
        asyncio.run(chat(parser.parse_args()))
    except KeyboardInterrupt:
        print("\n[stream closed: the server keeps the partial reply as CANCELLED]")


if __name__ == "__main__":
    main()

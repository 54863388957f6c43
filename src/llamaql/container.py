"""The one composition root: build_container(config, **overrides).

Everything in it is a singleton: the config, the database engine, the unit-of-work
factory, the inference engine, the services and the metrics. Services open one short
unit of work per database step, so nothing here is tied to a request (punq has no
request scope). Only this module sees the whole `Config`: each part it builds gets its
own component's slice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Final

import punq
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from llamaql.auth import Authenticator, create_authenticator
from llamaql.config import ChatConfig, Config
from llamaql.engine.local.downloads import DownloadLimits
from llamaql.engine.local.model_folder import ModelFolder
from llamaql.persistence.db import create_db_engine, create_session_factory, is_sqlite
from llamaql.persistence.db_health import CHECK_TIMEOUT_S, DatabaseProbe
from llamaql.persistence.db_share import DatabaseShares
from llamaql.persistence.replica_link import PgReplicaLink
from llamaql.persistence.repositories import make_uow_factory
from llamaql.ports.engine import ChatMessage, Engine
from llamaql.ports.events import EventBell
from llamaql.ports.model_files import ModelFiles, ModelsInUse
from llamaql.ports.replicas import ReplicaLink
from llamaql.ports.repositories import UnitOfWorkFactory
from llamaql.services.chat.save_retries import SAVE_RETRY_PAUSES_S
from llamaql.services.chat.service import ChatService
from llamaql.services.context_usage import ContextUsageService
from llamaql.services.conversations import ConversationService
from llamaql.services.events.dispatcher import EventDispatcher
from llamaql.services.events.feed import EventFeeds
from llamaql.services.metrics import Metrics
from llamaql.services.model_pulls import ModelPullService
from llamaql.services.models_info import ModelInfoService
from llamaql.services.replicas import Heartbeat, OwnedReplies, SingleProcess
from llamaql.services.search import SearchService

logger = logging.getLogger(__name__)


class _Default:
    """Marker: no override given, build the real thing."""


DEFAULT: Final = _Default()


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the app's lifespan starts and stops."""

    config: Config
    db_engine: AsyncEngine | None
    engine: Engine | None
    chat: ChatService | None
    metrics: Metrics
    replicas: ReplicaLink | None = None
    events: EventDispatcher | None = None  # the live feed's dispatcher
    heartbeat: Heartbeat | None = None  # replicas on PostgreSQL only
    db_probe: DatabaseProbe | None = None  # /health's database check
    pulls: ModelPullService | None = None  # running pulls are cancelled at stop


def shared_start(chat: ChatConfig) -> tuple[ChatMessage, ...]:
    """What most prompts begin with: the default system prompt, which the chat services
    put first in a conversation that has none of its own (the engine evaluates it once)."""
    if not chat.system_prompt.strip():
        return ()
    return (ChatMessage("system", chat.system_prompt),)


def create_engine(config: Config) -> Engine | None:
    """THE single place the real inference engine is constructed: a remote one when
    LLAMAQL_ENGINE_URL is set, else llama.cpp in process.

    Imported here, not at module top, so that tests with a fake engine (or none)
    never load llama.cpp. The model itself is loaded by `start()` in the lifespan.
    """
    engine: Engine
    if config.remote.engine_url is not None:
        from llamaql.engine.remote.engine import RemoteEngine

        engine = RemoteEngine(config.engine, config.remote)
    else:
        from llamaql.engine.local.models import LocalModels, llama_engine_factory

        engine = LocalModels(
            config.engine, engine_factory=llama_engine_factory(shared_start(config.chat))
        )
    return engine


def create_model_files(config: Config) -> ModelFiles:
    """The models folder's adapter: pulls into LLAMAQL_MODELS_DIR, up to
    LLAMAQL_MODEL_MAX_BYTES a file."""
    limits = DownloadLimits(max_bytes=config.pulls.model_max_bytes)
    return ModelFolder(config.engine.models_dir, limits)


def create_pull_service(
    config: Config, files: ModelFiles | None = None, engine: Engine | None = None
) -> ModelPullService:
    """pullModel, pullProgress, deleteModel and `llamaql pull`. The engine's model
    registry (the local engine's) is the `in_use` hook that refuses to delete a model
    with replies live, queued or waiting for its load."""
    in_use = engine if isinstance(engine, ModelsInUse) else None
    return ModelPullService(files or create_model_files(config), config.pulls, in_use=in_use)


def replica_parts(
    config: Config,
    db_engine: AsyncEngine | None,
    uow_factory: UnitOfWorkFactory,
    owned: OwnedReplies,
) -> tuple[ReplicaLink, Heartbeat | None]:
    """On PostgreSQL, replicas may share the database: cancel notices and a heartbeat
    (for the replies `owned` names); on SQLite (or a test's own unit of work) this
    process is the only server."""
    database, replicas = config.database, config.replicas
    if db_engine is None or is_sqlite(database.database_url):
        return SingleProcess(replicas.replica_id), None
    link = PgReplicaLink(
        database_url=database.database_url,
        db_engine=db_engine,
        replica_id=replicas.replica_id,
        ping_every_s=replicas.heartbeat_seconds,
        timeout_s=database.db_timeout_seconds,
    )
    heartbeat = Heartbeat(
        uow_factory,
        replica_id=replicas.replica_id,
        every_s=replicas.heartbeat_seconds,
        dead_after_s=replicas.replica_dead_after_seconds,
        owned=owned,
    )
    return link, heartbeat


def create_chat_service(
    config: Config,
    uow_factory: UnitOfWorkFactory,
    engine: Engine,
    *,
    replicas: ReplicaLink | None = None,
    save_retry_pauses: tuple[float, ...] = SAVE_RETRY_PAUSES_S,
) -> ChatService:
    """The chat service with its slice: the chat settings and the three facts of other
    components it needs; without a replica link, this process is the only server."""
    return ChatService(
        uow_factory,
        engine,
        config.chat,
        replicas=replicas or SingleProcess(config.replicas.replica_id),
        live_replies_per_user=config.live_replies_per_user,
        dead_after_s=config.replicas.replica_dead_after_seconds,
        db_timeout_s=config.database.db_timeout_seconds,
        save_retry_pauses=save_retry_pauses,
    )


def build_container(
    config: Config,
    *,
    engine: Engine | _Default | None = DEFAULT,
    uow_factory: UnitOfWorkFactory | None = None,
    conversation_service: ConversationService | None = None,
    model_info_service: ModelInfoService | None = None,
    chat_service: ChatService | None = None,
    authenticator: Authenticator | None = None,
    model_files: ModelFiles | None = None,
) -> punq.Container:
    """Wire everything; an override replaces what it names (tests pass fakes or None)."""
    container = punq.Container()
    database = config.database
    container.register(Config, instance=config)
    container.register(Authenticator, instance=authenticator or create_authenticator(config.auth))
    db_engine: AsyncEngine | None = None
    # Commits that wrote events ring it (a test's own unit of work: the poll finds them).
    bell = EventBell()
    if uow_factory is None:
        db_engine = create_db_engine(database.database_url, timeout_s=database.db_timeout_seconds)
        container.register(AsyncEngine, instance=db_engine)
        # Each user holds at most db_units_per_user of the pool's connections at once.
        shares = DatabaseShares(
            units_per_user=database.db_units_per_user, wait_s=database.db_wait_seconds
        )
        uow_factory = shares.wrap(
            make_uow_factory(
                create_session_factory(db_engine),
                timeout_s=database.db_timeout_seconds,
                bell=bell,
            )
        )
    db_probe = (
        DatabaseProbe(db_engine, timeout_s=min(CHECK_TIMEOUT_S, database.db_timeout_seconds))
        if db_engine is not None
        else None
    )
    the_engine = create_engine(config) if isinstance(engine, _Default) else engine
    chat: ChatService | None = None

    def owned() -> list[uuid.UUID]:
        # Read at each beat: the chat service is built below, with the replica link.
        return chat.owned_replies() if chat is not None else []

    replicas, heartbeat = replica_parts(config, db_engine, uow_factory, owned)
    if the_engine is not None:
        container.register(Engine, instance=the_engine)
        # sendMessage needs an engine; without one the chat service is absent.
        chat = chat_service or create_chat_service(
            config, uow_factory, the_engine, replicas=replicas
        )
        container.register(ChatService, instance=chat)
        container.register(
            ContextUsageService,
            instance=ContextUsageService(uow_factory, the_engine, config.chat),
        )
    container.register(
        ConversationService,
        instance=conversation_service
        or ConversationService(
            uow_factory,
            max_text_chars=config.chat.max_message_chars,
            stop_replies=chat.stop_replies if chat is not None else None,
            forget_kv=the_engine.forget if the_engine is not None else None,
            check_model=the_engine.check_model if the_engine is not None else None,
        ),
    )
    container.register(SearchService, instance=SearchService(uow_factory))
    dispatcher = EventDispatcher(uow_factory, retention_s=config.replicas.event_retention_seconds)
    bell.listen(dispatcher.wake)
    replicas.on_events(dispatcher.wake)
    container.register(EventFeeds, instance=EventFeeds(uow_factory, dispatcher))
    container.register(
        ModelInfoService, instance=model_info_service or ModelInfoService(config.engine, the_engine)
    )
    pulls = create_pull_service(config, model_files, the_engine)
    container.register(ModelPullService, instance=pulls)
    # A registry per app, never prometheus_client's global one: tests build many apps.
    metrics = Metrics(CollectorRegistry(), engine=the_engine)
    container.register(Metrics, instance=metrics)
    if chat is not None:
        chat.on_reply_end(metrics.reply_finished)
    container.register(
        Runtime,
        instance=Runtime(
            config,
            db_engine,
            the_engine,
            chat,
            metrics,
            replicas,
            dispatcher,
            heartbeat,
            db_probe,
            pulls,
        ),
    )
    # UnitOfWorkFactory is a Callable alias, so it is registered under a name.
    container.register("uow_factory", instance=uow_factory)
    return container

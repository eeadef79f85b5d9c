"""The FastAPI application. Other areas add their routers in ``create_app``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException

from bot.citizen.app import answer_pending, citizen_bot
from bot.delivery import Delivery
from bot.email.channel import start_email_channel, stop_email_channel
from core.config import get_settings
from inbox.demo_accounts import demo_passwords_in_use
from inbox.logging import install as install_log_filter
from inbox.runtime import Runtime, build_runtime
from inbox.scheduler import build_scheduler
from inbox.web.api_docs import api_docs_options
from inbox.web.deps import RuntimeDep
from inbox.web.headers import add_security_headers
from inbox.web.limits import add_limits
from inbox.web.processing import ProcessingExecutor
from otklik import registry
from otklik.freeze import freeze_startup

log = logging.getLogger(__name__)


def _warn_about_demo_passwords(rt: Runtime) -> None:
    with rt.factory() as session:
        logins = demo_passwords_in_use(session)
    if logins:
        log.warning(
            "demo accounts with their published passwords are active: %s. Fine for the demo; "
            "anywhere else change them (otklik operator password LOGIN) or deactivate them",
            ", ".join(logins),
        )


def create_app(runtime: Runtime | None = None, *, start_scheduler: bool = True) -> FastAPI:
    """The app; pass a runtime in tests (its clock, its database)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_filter()
        rt = runtime or build_runtime(get_settings())
        app.state.runtime = rt
        inline = rt.settings.processing == "inline"  # else otklik worker processes the journal
        # The outbox, the scheduler's jobs and the mailbox reader, unless otklik worker runs them.
        background = start_scheduler and rt.settings.background == "inline"
        if not inline:
            log.info("OTKLIK_PROCESSING=worker: webhooks only journal; otklik worker processes")
        if not background and start_scheduler:
            log.info("OTKLIK_BACKGROUND=off: no outbox, scheduler or mail reader in this process")
        processing = ProcessingExecutor() if inline else None
        app.state.processing = processing
        answer_pending(app, rt)  # before the first process_pending
        if inline:
            finished = rt.inbox.process_pending()
            if finished:
                log.warning("finished %d journalled events left by the previous run", finished)
        if start_scheduler:
            _warn_about_demo_passwords(rt)
        scheduler = build_scheduler(rt, process_pending=inline) if background else None
        registry.start(app, rt)
        if scheduler is not None:
            registry.add_jobs(scheduler, rt)
            scheduler.start()
        email_channel = start_email_channel(rt) if background else None
        # The one outbox loop of this process, in the app's event loop (where aiogram's and
        # maxapi's HTTP sessions live), with the sender of every enabled channel.
        delivery = None
        if background:
            senders = registry.senders(rt, registry.Clients.of_app(app))
            delivery = asyncio.create_task(
                Delivery(rt, senders, citizen_bot(app)).forever(rt.settings.outbox_interval)
            )
        if runtime is None:  # a server process (tests give their runtime: nothing frozen)
            freeze_startup(rt)
        try:
            yield
        finally:
            if delivery is not None:
                delivery.cancel()
                with suppress(asyncio.CancelledError):
                    await delivery
            await registry.Clients(
                telegram=getattr(app.state, "telegram_bot", None),
                max=getattr(app.state, "max_bot", None),
            ).close()
            await stop_email_channel(email_channel)
            if processing is not None:
                await asyncio.to_thread(processing.shutdown)
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if runtime is None:
                rt.dispose()

    settings = runtime.settings if runtime else get_settings()
    app = FastAPI(title="Otklik", lifespan=lifespan, **api_docs_options(settings))
    add_limits(app, settings)
    if runtime is not None:
        app.state.runtime = runtime
        answer_pending(app, runtime)  # also for an app driven without its lifespan
    registry.mount(app, settings)
    from inbox.web.ui import install_ui

    install_ui(app, runtime.settings if runtime else get_settings())
    from inbox.web.api import applications as applications_api
    from inbox.web.api import complaints as complaints_api
    from inbox.web.api import consents as consents_api
    from inbox.web.api import mailings as mailings_api

    app.include_router(applications_api.router)
    app.include_router(complaints_api.router)
    app.include_router(consents_api.router)
    app.include_router(mailings_api.router)

    @app.get("/healthz")
    def healthz(rt: RuntimeDep) -> dict[str, str]:
        try:
            with rt.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise HTTPException(503, detail="database unavailable") from exc
        return {"status": "ok"}

    add_security_headers(app, settings)  # last: it wraps every other middleware
    return app

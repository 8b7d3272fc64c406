"""boxoffice: the routes' blueprints and the event handlers; everything they do lives in
chalicelib/ (the routes in chalicelib/web/routes/)."""

from chalice import Rate

from chalicelib.events import handlers
from chalicelib.settings import get_settings
from chalicelib.web import middleware
from chalicelib.web.application import BoxOfficeApp
from chalicelib.web.routes import accounts, docs, health, me, page, reservations, sessions

settings = get_settings()

app = BoxOfficeApp(app_name="boxoffice")
app.register_middleware(middleware.log_context, "all")
app.register_middleware(middleware.http_guard, "http")
# Each module declares its routes, with what the OpenAPI document says of them.
for module in (health, docs, page, accounts, sessions, reservations, me):
    app.register_blueprint(module.routes)


@app.on_sqs_message(queue=settings.expiry_queue_name, batch_size=10)
def expire_holds(event):
    return handlers.sqs_batch_response(handlers.expire_batch, event)


@app.on_sqs_message(queue=settings.notifications_queue_name, batch_size=10)
def send_receipts(event):
    return handlers.sqs_batch_response(handlers.receipt_batch, event)


@app.on_sqs_message(queue=settings.analytics_queue_name, batch_size=10)
def count_sales(event):
    return handlers.sqs_batch_response(handlers.count_batch, event)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep(event):
    handlers.sweep()


# Each run relays for about a minute (its lambda_timeout), so runs overlap and the outbox is
# always watched; see chalicelib/events/relay.py.
@app.schedule(Rate(1, unit=Rate.MINUTES))
def relay_outbox(event):
    handlers.relay_outbox(event.context.get_remaining_time_in_millis)

"""boxoffice: routes and event handlers only; everything they do lives in chalicelib/."""

from chalice import Rate

from chalicelib.events import handlers
from chalicelib.settings import get_settings
from chalicelib.web import app_page, docs, endpoints, health, middleware
from chalicelib.web.application import BoxOfficeApp

settings = get_settings()
# Bodies are parsed as JSON whatever Content-Type the client sent (curl -d sends a form type).
JSON_BODIES = ["application/json", "*/*"]

app = BoxOfficeApp(app_name="boxoffice")
app.register_middleware(middleware.log_context, "all")
app.register_middleware(middleware.http_guard, "http")


@app.route("/health", methods=["GET"])
def health_check():
    return health.health()


@app.route("/openapi.json", methods=["GET"])
def openapi_document():
    return docs.openapi_document()


@app.route("/api-docs", methods=["GET"])
def api_docs():
    return docs.swagger_ui()


@app.route("/api-docs/{asset}", methods=["GET"])
def api_docs_asset(asset):
    return docs.swagger_asset(asset)


@app.route("/app", methods=["GET"])
def seat_map_page():
    return app_page.page()


@app.route("/app/{asset}", methods=["GET"])
def seat_map_page_asset(asset):
    return app_page.page_asset(asset)


@app.route("/auth/signup", methods=["POST"], content_types=JSON_BODIES)
def sign_up():
    return endpoints.sign_up(app.current_request)


@app.route("/auth/login", methods=["POST"], content_types=JSON_BODIES)
def log_in():
    return endpoints.log_in(app.current_request)


@app.route("/sessions", methods=["POST"], content_types=JSON_BODIES)
def create_session():
    return endpoints.create_session(app.current_request)


@app.route("/sessions", methods=["GET"])
def list_sessions():
    return endpoints.list_sessions(app.current_request)


@app.route("/sessions/{session_id}", methods=["GET"])
def get_session(session_id):
    return endpoints.get_session(session_id)


@app.route("/sessions/{session_id}/seats", methods=["GET"])
def seat_map(session_id):
    return endpoints.seat_map(app.current_request, session_id)


@app.route("/sessions/{session_id}/stats", methods=["GET"])
def session_stats(session_id):
    return endpoints.session_stats(app.current_request, session_id)


@app.route("/reservations", methods=["POST"], content_types=JSON_BODIES)
def hold_seats():
    return endpoints.hold_seats(app.current_request)


@app.route("/reservations/{reservation_id}", methods=["GET"])
def get_reservation(reservation_id):
    return endpoints.get_reservation(app.current_request, reservation_id)


@app.route("/reservations/{reservation_id}", methods=["DELETE"])
def cancel_reservation(reservation_id):
    return endpoints.cancel_reservation(app.current_request, reservation_id)


@app.route("/reservations/{reservation_id}/payment", methods=["POST"], content_types=JSON_BODIES)
def pay_reservation(reservation_id):
    return endpoints.pay_reservation(app.current_request, reservation_id)


@app.route("/me/purchases", methods=["GET"])
def purchases():
    return endpoints.purchases(app.current_request)


@app.route("/me/receipts", methods=["GET"])
def receipts():
    return endpoints.receipts(app.current_request)


@app.on_sqs_message(queue=settings.expiry_queue_name, batch_size=10)
def expire_holds(event):
    return handlers.sqs_batch_response(handlers.expire_batch, event)


@app.on_sqs_message(queue=settings.notifications_queue_name, batch_size=10)
def send_receipts(event):
    return handlers.sqs_batch_response(handlers.process_batch, event, handlers.notify)


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

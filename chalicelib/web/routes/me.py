"""The signed-in customer's history: purchases, and the receipts the subscriber recorded."""

from __future__ import annotations

from chalicelib.services import payments, reports, views
from chalicelib.web.registry import SIGNED_IN, Routes
from chalicelib.web.tokens import Caller

routes = Routes(__name__, tag="me")


@routes.get(
    "/me/purchases",
    summary="The caller's purchases, newest first",
    response=views.PurchaseList,
    role=SIGNED_IN,
)
def purchases(caller: Caller) -> views.PurchaseList:
    return payments.purchase_history(caller.user_id, signed_in=caller)


@routes.get(
    "/me/receipts",
    summary="The caller's receipts, recorded by the notifications subscriber",
    response=views.ReceiptList,
    role=SIGNED_IN,
    description="Eventually consistent: one receipt per sale, recorded from its event.",
)
def receipts(caller: Caller) -> views.ReceiptList:
    return reports.receipts_of(caller.user_id, signed_in=caller)

"""Paying a fee: the provider's link and a QR code of it. No payment is processed here."""

from __future__ import annotations

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.payment import payment_url
from bot.citizen.router import Router, button

router = Router("payment")


@router.on(button(texts.PAY))
def pick_fee(turn: Turn) -> None:
    rows: list[list[texts.Button]] = [
        [{"id": f"{texts.FEE_PREFIX}{f.id}", "text": f"{f.title} — {f.amount} руб."}]
        for f in turn.context.catalog.fees
    ]
    turn.ask(None, texts.PAY_PICK, [*rows, *texts.BACK])


@router.on(button(texts.FEE_PREFIX))
def pay(turn: Turn) -> None:
    assert turn.input.button is not None
    fee = turn.context.catalog.fee(turn.input.button.removeprefix(texts.FEE_PREFIX))
    if fee is None:
        pick_fee(turn)
        return
    #: The payment id: the appeal number and the fee, so the agency can match the payment.
    number = f"{turn.conversation.number}-{fee.id}"
    url = payment_url(
        turn.context.payment_url_template, purpose=fee.title, amount=fee.amount, number=number
    )
    text = texts.PAY_LINK.format(title=fee.title, amount=fee.amount, url=url, number=number)
    turn.state.step = None
    turn.say(
        text,
        texts.AFTER_ANSWER,
        payment={"url": url, "fee": fee.id, "amount": fee.amount, "number": number},
    )

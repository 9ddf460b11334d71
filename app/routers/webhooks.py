from __future__ import annotations

from fastapi import APIRouter, Query, status

from app.notify import webhooks as webhook_service
from app.notify.webhooks import DeliveryPublic, SubscriptionCreate, SubscriptionCreated, SubscriptionPublic
from app.routers.deps import ClockDep, Id, PrincipalDep, SessionDep, SettingsDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


@router.post(
    "/webhook-subscriptions",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe an endpoint to incident events (the secret is shown once)",
)
def create_subscription(
    data: SubscriptionCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep, settings: SettingsDep
) -> SubscriptionCreated:
    return webhook_service.create(
        session, clock=clock, actor=principal, data=data, allow_private=settings.webhook_allow_private
    )


@router.get("/webhook-subscriptions", summary="Webhook subscriptions (an agency sees its own)")
def list_subscriptions(session: SessionDep, principal: PrincipalDep) -> Page[SubscriptionPublic]:
    rows = webhook_service.listing(session, actor=principal)
    return Page(items=rows, total=len(rows), limit=len(rows), offset=0)


@router.delete("/webhook-subscriptions/{subscription_id}", status_code=204, summary="Stop a subscription")
def delete_subscription(subscription_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> None:
    webhook_service.delete(session, clock=clock, actor=principal, subscription_id=subscription_id)


@router.get("/webhook-subscriptions/{subscription_id}/deliveries", summary="A subscription's newest deliveries")
def list_deliveries(
    subscription_id: Id,
    session: SessionDep,
    principal: PrincipalDep,
    limit: int = Query(50, ge=1, le=500),
) -> list[DeliveryPublic]:
    return webhook_service.deliveries(session, actor=principal, subscription_id=subscription_id, limit=limit)


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a finished (e.g. dead-lettered) delivery again, same event id",
)
def replay_delivery(delivery_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> DeliveryPublic:
    return webhook_service.replay(session, clock=clock, actor=principal, delivery_id=delivery_id)

from django.urls import path

from orders.api import views
from payments.api import views as payment_views

urlpatterns = [
    path("<uuid:order_id>/", views.OrderDetailView.as_view(), name="order-detail"),
    path("<uuid:order_id>/cancel/", views.OrderCancelView.as_view(), name="order-cancel"),
    path("<uuid:order_id>/fulfil/", views.OrderFulfilView.as_view(), name="order-fulfil"),
    path("<uuid:order_id>/payments/", payment_views.OrderPaymentView.as_view(), name="order-payments"),
    path("<uuid:order_id>/refunds/", payment_views.OrderRefundView.as_view(), name="order-refunds"),
]

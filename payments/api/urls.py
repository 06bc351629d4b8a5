from django.urls import path

from payments.api import views

urlpatterns = [
    path("webhooks/provider/", views.ProviderWebhookView.as_view(), name="payments-webhook-provider"),
]

from django.contrib import admin
from django.urls import include, path

from commerce import accounts, views
from orders.api.views import CheckoutView

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/inventory/", include("inventory.api.urls")),
    path("api/v1/auth/register/", accounts.RegisterView.as_view(), name="auth-register"),
    path("api/v1/auth/login/", accounts.LoginView.as_view(), name="auth-login"),
    path("api/v1/carts/", include("cart.api.urls")),
    path("api/v1/checkout/", CheckoutView.as_view(), name="checkout"),
    path("api/v1/orders/", include("orders.api.urls")),
    path("api/v1/payments/", include("payments.api.urls")),
    path("api/v1/reports/", include("analytics.api.urls")),
]

handler404 = "commerce.errors.handler404"
handler500 = "commerce.errors.handler500"

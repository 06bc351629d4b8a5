from django.contrib import admin
from django.urls import include, path

from commerce import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("catalog.api.urls")),
]

handler404 = "commerce.errors.handler404"
handler500 = "commerce.errors.handler500"

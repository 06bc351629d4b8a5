from django.urls import path

from inventory.api import views

urlpatterns = [
    path("adjustments/", views.AdjustmentCreateView.as_view(), name="inventory-adjustment-create"),
    path("<str:sku>/", views.StockItemDetailView.as_view(), name="inventory-stock-detail"),
]

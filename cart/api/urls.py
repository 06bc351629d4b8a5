from django.urls import path

from cart.api import views

urlpatterns = [
    path("", views.CartListView.as_view(), name="cart-list"),
    path("<uuid:cart_id>/", views.CartDetailView.as_view(), name="cart-detail"),
    path("<uuid:cart_id>/items/", views.CartItemListView.as_view(), name="cart-item-list"),
    path("<uuid:cart_id>/items/<int:item_id>/", views.CartItemDetailView.as_view(), name="cart-item-detail"),
]

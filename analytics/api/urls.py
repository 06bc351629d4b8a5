from django.urls import path

from analytics.api.views import SalesReportView

urlpatterns = [
    path("sales/", SalesReportView.as_view(), name="reports-sales"),
]

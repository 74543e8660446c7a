from django.urls import path

from agents.pages.views import (
    RunCancelView,
    RunDetailView,
    RunFileView,
    RunListView,
    RunNewView,
    RunProgressView,
)

urlpatterns = [
    path("runs/", RunListView.as_view(), name="research-runs"),
    path("runs/new/", RunNewView.as_view(), name="research-run-new"),
    path("runs/<int:run_id>/", RunDetailView.as_view(), name="research-run"),
    path("runs/<int:run_id>/progress/", RunProgressView.as_view(), name="research-run-progress"),
    path("runs/<int:run_id>/cancel/", RunCancelView.as_view(), name="research-run-cancel"),
    path("runs/<int:run_id>/files/<path:path>", RunFileView.as_view(), name="research-run-file"),
]

"""`/api/v1/sim/...` and `/api/v1/agents/`."""

from django.urls import path

from agents.api import views

app_name = "agents_api"

urlpatterns = [
    path("sim/", views.SimStatusApi.as_view(), name="sim"),
    path("sim/pause", views.SimPauseApi.as_view(), name="sim-pause"),
    path("sim/resume", views.SimResumeApi.as_view(), name="sim-resume"),
    path("sim/reset", views.SimResetApi.as_view(), name="sim-reset"),
    path("sim/shock", views.SimShockApi.as_view(), name="sim-shock"),
    path("agents/", views.AgentListApi.as_view(), name="agent-list"),
]

"""`/api/v1/sim/...` and `/api/v1/agents/`."""

from agents.api import views
from exchange.api.routes import route

app_name = "agents_api"

urlpatterns = [
    *route("sim/", views.SimStatusApi.as_view(), "sim"),
    *route("sim/pause", views.SimPauseApi.as_view(), "sim-pause"),
    *route("sim/resume", views.SimResumeApi.as_view(), "sim-resume"),
    *route("sim/reset", views.SimResetApi.as_view(), "sim-reset"),
    *route("sim/shock", views.SimShockApi.as_view(), "sim-shock"),
    *route("sim/events/", views.SimEventsApi.as_view(), "sim-events"),
    *route("agents/", views.AgentListApi.as_view(), "agent-list"),
]

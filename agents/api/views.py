"""The simulation controls and the agents' leaderboard: thin views over `agents.selectors` and
`agents.services`. Reading needs a login; changing the simulation is for staff (403 in the
API's error format for others)."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.api import serializers as s
from exchange.api.serializers import ErrorSerializer

ERROR = ErrorSerializer
AUTH_ERRORS = {401: ERROR, 403: ERROR}
STAFF_ANSWERS = {200: s.SimStatusSerializer, **AUTH_ERRORS, 409: ERROR, 503: ERROR}


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SimStatusApi(APIView):
    @extend_schema(
        tags=["simulation"],
        summary="The simulation's state",
        responses={200: s.SimStatusSerializer, **AUTH_ERRORS, 503: ERROR},
    )
    def get(self, request):
        return Response(selectors.sim_status())


class SimEventsApi(APIView):
    @extend_schema(
        tags=["simulation"],
        summary="The simulation's recent events",
        description="Pauses, resumes, resets and shocks, oldest first (the last 200).",
        responses={200: s.SimEventSerializer(many=True), **AUTH_ERRORS, 503: ERROR},
    )
    def get(self, request):
        return Response(selectors.sim_events())


class _SimControlApi(APIView):
    permission_classes = [IsAdminUser]
    control = None  # the service: takes nothing, returns the new sim_status()

    def post(self, request):
        return Response(type(self).control())


@extend_schema(
    tags=["simulation"],
    summary="Pause the simulation (staff)",
    description="Halts every book and idles the agents; resting orders stay.",
    request=None,
    responses=STAFF_ANSWERS,
)
class SimPauseApi(_SimControlApi):
    control = staticmethod(services.sim_pause)


@extend_schema(
    tags=["simulation"],
    summary="Resume the simulation (staff)",
    description="Resumes every book and wakes the agents. 409 while a reset is in progress.",
    request=None,
    responses=STAFF_ANSWERS,
)
class SimResumeApi(_SimControlApi):
    control = staticmethod(services.sim_resume)


@extend_schema(
    tags=["simulation"],
    summary="Reset the simulation (staff)",
    description=(
        "Halts the books and sends RESET to each: every resting order is cancelled. Once the "
        "recorder has recorded the resets, every account goes back to its initial cash and "
        "flat, and the simulation resumes if it was running (the state reads `paused` until "
        "then)."
    ),
    request=None,
    responses=STAFF_ANSWERS,
)
class SimResetApi(_SimControlApi):
    control = staticmethod(services.sim_reset)


class SimShockApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=["simulation"],
        summary="Shock an instrument (staff)",
        description=(
            "Moves the instrument's fundamental value and reference price by `pct` percent; "
            "the agents react through their own logic."
        ),
        request=s.ShockRequestSerializer,
        responses={**STAFF_ANSWERS, 400: ERROR, 404: ERROR},
    )
    def post(self, request):
        data = _valid(s.ShockRequestSerializer, request.data)
        return Response(services.sim_shock(symbol=data["symbol"], pct=data["pct"]))


class AgentListApi(APIView):
    @extend_schema(
        tags=["simulation"],
        summary="The agents' leaderboard",
        description="One row per agent, best equity first; money and quantities as strings.",
        parameters=[s.LeaderboardQuerySerializer],
        responses={200: s.LeaderboardRowSerializer(many=True), 400: ERROR, **AUTH_ERRORS},
    )
    def get(self, request):
        query = _valid(s.LeaderboardQuerySerializer, request.query_params)
        return Response(selectors.leaderboard(query.get("symbol")))

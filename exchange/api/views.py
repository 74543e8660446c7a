"""The API's views: thin. Each validates its input with a serializer, calls one selector, service
or gateway function, and serializes the answer. Failures are `ExchangeError`s or DRF exceptions,
which `exchange.api.errors.exception_handler` turns into the one error format."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange import selectors, services
from exchange.api import actions, index
from exchange.api import serializers as s
from exchange.api.authentication import BearerTokenAuthentication, CsrfSessionAuthentication
from exchange.api.pagination import IdCursorPagination, SeqCursorPagination
from exchange.api.throttling import OrderRateThrottle
from exchange.errors import Forbidden, NotFound
from exchange.models import ApiToken
from exchange.orders import gateway

ERROR = s.ErrorSerializer
AUTH_ERRORS = {401: ERROR, 403: ERROR}
SYMBOL_PARAM = OpenApiParameter("symbol", str, OpenApiParameter.PATH, description="e.g. ACME")
ORDER_PARAM = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The order's id.")
TOKEN_PARAM = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The token's id.")

_place = gateway.blocking(actions.place)
_cancel = gateway.blocking(actions.cancel)
_replace = gateway.blocking(actions.replace)
_cancel_all = gateway.blocking(actions.cancel_all)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _instrument(symbol: str):
    instrument = selectors.instrument_get(symbol)
    if instrument is None:
        raise NotFound(f"Unknown symbol {symbol[:40]!r}.", field="symbol", code="unknown_symbol")
    return instrument


def _page(view, request, queryset, serializer_class) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


# --- Market data (public) ---------------------------------------------------------------------


class ApiIndexApi(APIView):
    """What the API offers, for a program finding its way (and a person with curl)."""

    permission_classes = [AllowAny]

    @extend_schema(
        tags=["meta"], summary="The API's endpoints", responses={200: s.ApiIndexSerializer}
    )
    def get(self, request):
        return Response(s.ApiIndexSerializer(index.api_index()).data)


class ServerTimeApi(APIView):
    """The exchange's clock, for programs that sign, schedule or measure against it."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["meta"], summary="Server time", responses={200: s.ServerTimeSerializer})
    def get(self, request):
        return Response(s.ServerTimeSerializer(index.server_time()).data)


class InstrumentListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["market data"],
        summary="List instruments",
        responses={200: s.InstrumentSerializer(many=True)},
    )
    def get(self, request):
        return Response(s.InstrumentSerializer(selectors.instrument_list(), many=True).data)


class InstrumentDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["market data"],
        summary="One instrument",
        parameters=[SYMBOL_PARAM],
        responses={200: s.InstrumentSerializer, 404: ERROR},
    )
    def get(self, request, symbol: str):
        return Response(s.InstrumentSerializer(_instrument(symbol)).data)


class InstrumentBookApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["market data"],
        summary="L2 order book snapshot",
        description=(
            "The engine's latest aggregated book (top levels, best first) with the sequence "
            "number of the last event it reflects. If the engine has not published the book, "
            "the answer is an empty book with seq 0 and available=false."
        ),
        parameters=[SYMBOL_PARAM, s.BookQuerySerializer],
        responses={200: s.BookSerializer, 400: ERROR, 404: ERROR},
    )
    def get(self, request, symbol: str):
        instrument = _instrument(symbol)
        query = _valid(s.BookQuerySerializer, request.query_params)
        book = selectors.book_levels(instrument, depth=query["depth"])
        return Response(s.BookSerializer(book, context={"instrument": instrument}).data)


class InstrumentTradesApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = SeqCursorPagination

    @extend_schema(
        tags=["market data"],
        summary="Recent trades, newest first",
        parameters=[SYMBOL_PARAM],
        responses={200: s.TradeSerializer(many=True), 400: ERROR, 404: ERROR},
    )
    def get(self, request, symbol: str):
        trades = selectors.trade_list(_instrument(symbol))
        return _page(self, request, trades, s.TradeSerializer)


class InstrumentCandlesApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["market data"],
        summary="OHLCV candles",
        description=(
            "Candles of the last `limit` intervals up to the latest trade, oldest first. "
            "Intervals without trades are left out."
        ),
        parameters=[SYMBOL_PARAM, s.CandleQuerySerializer],
        responses={200: s.CandlesSerializer, 400: ERROR, 404: ERROR},
    )
    def get(self, request, symbol: str):
        instrument = _instrument(symbol)
        query = _valid(s.CandleQuerySerializer, request.query_params)
        candles = selectors.trade_candles(
            instrument, interval=query["interval"], limit=query["limit"]
        )
        data = {"symbol": instrument.symbol, "interval": query["interval"], "candles": candles}
        return Response(s.CandlesSerializer(data, context={"instrument": instrument}).data)


# --- Staff operations -------------------------------------------------------------------------


class _InstrumentHaltApi(APIView):
    permission_classes = [IsAdminUser]
    halted: bool

    def post(self, request, symbol: str):
        instrument = services.instrument_halt_set(
            instrument=_instrument(symbol), halted=self.halted
        )
        return Response(s.InstrumentSerializer(instrument).data)


_STAFF = {200: s.InstrumentSerializer, **AUTH_ERRORS, 404: ERROR, 503: ERROR}


@extend_schema(
    tags=["operations"],
    summary="Halt trading (staff)",
    description="Refuses new orders at once and sends HALT to the engine.",
    parameters=[SYMBOL_PARAM],
    request=None,
    responses=_STAFF,
)
class InstrumentHaltApi(_InstrumentHaltApi):
    halted = True


@extend_schema(
    tags=["operations"],
    summary="Resume trading (staff)",
    description="Sends RESUME to the engine and accepts orders again.",
    parameters=[SYMBOL_PARAM],
    request=None,
    responses=_STAFF,
)
class InstrumentResumeApi(_InstrumentHaltApi):
    halted = False


# --- Orders -----------------------------------------------------------------------------------


class OrderListCreateApi(APIView):
    pagination_class = IdCursorPagination
    throttle_classes = [OrderRateThrottle]

    @extend_schema(
        tags=["orders"],
        summary="Your orders, newest first",
        parameters=[s.OrderListQuerySerializer],
        responses={200: s.OrderRowSerializer(many=True), 400: ERROR, **AUTH_ERRORS},
    )
    def get(self, request):
        query = _valid(s.OrderListQuerySerializer, request.query_params)
        account = services.account_for_user(request.user)
        orders = selectors.order_list(
            account=account,
            symbol=query.get("symbol"),
            status=query.get("status"),
            open_only=query["open"],
        )
        paginator = self.pagination_class()
        page = paginator.paginate_orders(orders, request, view=self)
        return paginator.get_paginated_response(actions.order_rows(page))

    @extend_schema(
        tags=["orders"],
        summary="Place an order",
        description=(
            "201: the engine's immediate outcome (NEW, PARTIALLY_FILLED, FILLED, EXPIRED or "
            "REJECTED with reject_reason; fills so far). 202: the order is placed (status "
            "PENDING) but the engine did not answer within the wait, or wait=false. 200: an "
            "order with this client_order_id exists already; it is returned and nothing is "
            "placed (a retry is always safe, however long after). The order is visible to GET "
            "/orders/ and can be cancelled and replaced at once in every case; until the "
            "exchange has recorded the engine's answer, reads show it PENDING. 503 with code "
            "outcome_unknown: the exchange may or may not have taken the order — retry with the "
            "same client_order_id (the message names it). 503 with code instrument_not_served: "
            "no engine serves the symbol yet (an instrument listed a moment ago is taken on "
            "within about a second); nothing was placed. 400 instrument_disabled: the "
            "instrument is delisted. 422 with code insufficient_funds: the order's worst-case "
            "cost (price times quantity plus fees; a market buy valued at the upper limit of the "
            "instrument's price band) is above the account's available cash — its cash minus "
            "what its open buy orders reserve; the message names both amounts, and nothing was "
            "placed. Sells reserve nothing (short selling is bounded by the position limit). "
            "409 with code no_price_band: a market buy on an instrument without a price band "
            "cannot be valued; place a limit order."
        ),
        request=s.OrderCreateSerializer,
        responses={
            201: s.OrderDetailSerializer,
            202: OpenApiResponse(s.OrderDetailSerializer, "Placed; no outcome yet."),
            200: OpenApiResponse(s.OrderDetailSerializer, "Existing order (idempotent retry)."),
            400: ERROR,
            **AUTH_ERRORS,
            409: ERROR,
            422: ERROR,
            429: ERROR,
            503: ERROR,
        },
    )
    def post(self, request):
        # Programs (a bearer token) are answered by `order_entry.OrderEntryApp` before Django;
        # this is the same request from the pages (the session). Both call `place`.
        data = _valid(s.OrderCreateSerializer, request.data)
        account = services.account_for_user(request.user)
        code, body = _place(account, data)
        return Response(body, status=code)


class OrderDetailApi(APIView):
    @extend_schema(
        tags=["orders"],
        summary="One of your orders, with its fills",
        parameters=[ORDER_PARAM],
        responses={200: s.OrderStatusSerializer, **AUTH_ERRORS, 404: ERROR},
    )
    def get(self, request, pk: int):
        account = services.account_for_user(request.user)
        code, body = actions.order_status(account, order_id=pk)
        return Response(body, status=code)


class OrderByClientOrderIdApi(APIView):
    @extend_schema(
        tags=["orders"],
        summary="One of your orders by its client order id, with its fills",
        parameters=[
            OpenApiParameter(
                "client_order_id", str, OpenApiParameter.PATH, description="Yours, as you sent it."
            )
        ],
        responses={200: s.OrderStatusSerializer, **AUTH_ERRORS, 404: ERROR},
    )
    def get(self, request, client_order_id: str):
        account = services.account_for_user(request.user)
        code, body = actions.order_status(account, client_order_id=client_order_id)
        return Response(body, status=code)


COMMAND_ANSWERS = {
    200: OpenApiResponse(s.OrderDetailSerializer, "The engine's answer: the order after it."),
    202: OpenApiResponse(s.OrderSerializer, "Sent; no answer yet (or wait=false)."),
}


class OrderCancelApi(APIView):
    throttle_classes = [OrderRateThrottle]

    @extend_schema(
        tags=["orders"],
        summary="Cancel an order",
        description=(
            "Sends the cancel to the engine and, unless wait=false, waits briefly for its "
            "answer: 200 with the order CANCELED; 409 order_not_open when it had ended "
            "meanwhile (filled, expired); 202 when the answer did not come in time (the order "
            "shows CANCELED once recorded). The body may be empty."
        ),
        parameters=[ORDER_PARAM],
        request=s.OrderCancelSerializer,
        responses={
            **COMMAND_ANSWERS,
            400: ERROR,
            **AUTH_ERRORS,
            404: ERROR,
            409: ERROR,
            429: ERROR,
            503: ERROR,
        },
    )
    def post(self, request, pk: int):
        data = _valid(s.OrderCancelSerializer, request.data)
        account = services.account_for_user(request.user)
        code, body = _cancel(account, data, order_id=pk)
        return Response(body, status=code)


class OrderReplaceApi(APIView):
    throttle_classes = [OrderRateThrottle]

    @extend_schema(
        tags=["orders"],
        summary="Change an order's price and/or remaining quantity",
        description=(
            "Reducing the quantity at the same price keeps the order's priority; a new price "
            "or a larger quantity sends it to the back of its level. A buy's replace holds the "
            "order's whole new cost (new price times new remaining quantity plus fees) beside what "
            "the order reserves until the engine has answered: 422 insufficient_funds, nothing "
            "sent, when the available cash does not cover it. Unless wait=false, waits briefly "
            "for the engine's answer: 200 with the order after it (and the fills a new price "
            "that crossed made); 409 with the engine's reason as the code when it refused "
            "(order_not_open, price_out_of_band, volatility_pause, book_halted, position_limit, "
            "post_only_would_cross); 202 when the answer did not come in time."
        ),
        parameters=[ORDER_PARAM],
        request=s.OrderReplaceSerializer,
        responses={
            **COMMAND_ANSWERS,
            400: ERROR,
            **AUTH_ERRORS,
            404: ERROR,
            409: ERROR,
            422: ERROR,
            429: ERROR,
            503: ERROR,
        },
    )
    def post(self, request, pk: int):
        data = _valid(s.OrderReplaceSerializer, request.data)
        account = services.account_for_user(request.user)
        code, body = _replace(account, data, order_id=pk)
        return Response(body, status=code)


class OrderCancelAllApi(APIView):
    throttle_classes = [OrderRateThrottle]

    @extend_schema(
        tags=["orders"],
        summary="Cancel all your open orders (in one symbol, or all)",
        request=s.OrderCancelAllSerializer,
        responses={
            202: s.OrderCancelAllResultSerializer,
            400: ERROR,
            **AUTH_ERRORS,
            404: ERROR,
            429: ERROR,
            503: ERROR,
        },
    )
    def post(self, request):
        data = _valid(s.OrderCancelAllSerializer, request.data)
        account = services.account_for_user(request.user)
        code, body = _cancel_all(account, data)
        return Response(body, status=code)


# --- Account ----------------------------------------------------------------------------------


class AccountApi(APIView):
    @extend_schema(
        tags=["account"],
        summary="Cash, positions, P&L and equity",
        responses={200: s.AccountSerializer, **AUTH_ERRORS},
    )
    def get(self, request):
        account = services.account_for_user(request.user)
        return Response(s.AccountSerializer(selectors.account_summary(account)).data)


class AccountFillsApi(APIView):
    pagination_class = IdCursorPagination

    @extend_schema(
        tags=["account"],
        summary="Your fills, newest first",
        parameters=[
            OpenApiParameter("symbol", str, OpenApiParameter.QUERY, description="Only this one.")
        ],
        responses={200: s.FillSerializer(many=True), 400: ERROR, **AUTH_ERRORS},
    )
    def get(self, request):
        account = services.account_for_user(request.user)
        symbol = request.query_params.get("symbol") or None
        fills = selectors.fill_list(account=account, symbol=symbol)
        return _page(self, request, fills, s.FillSerializer)


# --- API tokens -------------------------------------------------------------------------------


class TokenListCreateApi(APIView):
    # A program's first token: its person's username and password by HTTP Basic (no login form
    # to scrape), beside the session of the site. Never a token (see `post`).
    authentication_classes = [
        BearerTokenAuthentication,
        BasicAuthentication,
        CsrfSessionAuthentication,
    ]

    @extend_schema(
        tags=["tokens"],
        summary="Your API tokens (secrets are never shown again)",
        responses={200: s.TokenSerializer(many=True), **AUTH_ERRORS},
    )
    def get(self, request):
        return Response(
            s.TokenSerializer(selectors.api_token_list(user=request.user), many=True).data
        )

    @extend_schema(
        tags=["tokens"],
        summary="Create an API token",
        description="The answer holds the secret, shown this once. Only a person creates "
        "tokens: logged in on the site (its session), or with their username and password by "
        "HTTP Basic (`curl -u name:password`) — how a program gets its first token. A request "
        "authenticated by a token is refused 403 `token_cannot_create_tokens`.",
        request=s.TokenCreateSerializer,
        responses={201: s.TokenCreatedSerializer, 400: ERROR, **AUTH_ERRORS, 409: ERROR},
    )
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            # A leaked token must not be able to mint more (nor outlive its revocation so).
            raise Forbidden(
                "A token cannot create tokens: create them logged in, on the site or with its "
                "session.",
                code="token_cannot_create_tokens",
            )
        data = _valid(s.TokenCreateSerializer, request.data)
        token, secret = services.api_token_create(user=request.user, name=data["name"])
        token.token = secret
        return Response(s.TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(
        tags=["tokens"],
        summary="Revoke an API token",
        parameters=[TOKEN_PARAM],
        responses={204: None, **AUTH_ERRORS, 404: ERROR},
    )
    def delete(self, request, pk: int):
        services.api_token_revoke(user=request.user, token_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

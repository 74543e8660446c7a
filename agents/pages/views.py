"""The research runs' pages (staff only): the list, a new run, one run — its progress (polled
as JSON), its report and its files. Thin: reads through `agents.research_runs.selectors`, writes
through `agents.research_runs.services`; the runs themselves are `run_research`'s."""

import mimetypes

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views import View

from agents.models import ResearchRun
from agents.pages.forms import ResearchRunForm
from agents.research_runs import selectors, services
from exchange import selectors as exchange_selectors
from exchange.errors import ExchangeError, NotFound

#: Shown in the page; everything else is a download (a run's HTML report included: served
#: inline from the site's origin, a page could run whatever it holds).
INLINE_TYPES = {"image/png"}


class StaffOnly(LoginRequiredMixin, UserPassesTestMixin):
    """Anonymous: to the login page; logged in without staff: 403."""

    def test_func(self):
        return self.request.user.is_staff


def _run(run_id: int) -> ResearchRun:
    try:
        return selectors.run_get(run_id)
    except NotFound as error:
        raise Http404(error.message) from None


class RunListView(StaffOnly, View):
    per_page = 25

    def get(self, request):
        page = Paginator(selectors.run_list(), self.per_page).get_page(request.GET.get("page"))
        rows = [(run, selectors.run_progress(run)) for run in page.object_list]
        context = {"page": page, "rows": rows}
        return TemplateResponse(request, "agents/research_runs.html", context)


class RunNewView(StaffOnly, View):
    template_name = "agents/research_run_new.html"

    def _form(self, data=None):
        symbols = list(
            exchange_selectors.instrument_list()
            .filter(enabled=True)
            .order_by("symbol")
            .values_list("symbol", flat=True)
        )
        return ResearchRunForm(data, symbols=symbols)

    def _render(self, form, status=200):
        return TemplateResponse(self.request, self.template_name, {"form": form}, status=status)

    def get(self, request):
        return self._render(self._form())

    def post(self, request):
        form = self._form(request.POST)
        if not form.is_valid():
            return self._render(form, status=400)
        try:
            run = services.run_queue(user=request.user, **form.cleaned_data)
        except ExchangeError as error:
            field = error.field if error.field in form.fields else None
            form.add_error(field, error.message)
            return self._render(form, status=error.status)
        messages.success(request, f"Run {run.pk} queued.")
        return redirect("research-run", run_id=run.pk)


class RunDetailView(StaffOnly, View):
    def get(self, request, run_id: int):
        run = _run(run_id)
        context = {
            "run": run,
            "progress": selectors.run_progress(run),
            "report": selectors.run_report(run) if run.state == run.State.DONE else None,
        }
        return TemplateResponse(request, "agents/research_run.html", context)


class RunProgressView(StaffOnly, View):
    def get(self, request, run_id: int):
        return JsonResponse(selectors.run_progress(_run(run_id)))


class RunCancelView(StaffOnly, View):
    def post(self, request, run_id: int):
        try:
            run = services.run_cancel(run_id=run_id)
        except NotFound as error:
            raise Http404(error.message) from None
        except ExchangeError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                f"Run {run.pk} cancelled."
                if run.state == run.State.CANCELLED
                else f"Run {run.pk} is being stopped.",
            )
        return redirect("research-run", run_id=run_id)


class RunFileView(StaffOnly, View):
    """One file of a run's directory: a plot shown in the page, anything else downloaded."""

    def get(self, request, run_id: int, path: str):
        try:
            file = selectors.run_file(_run(run_id), path)
        except NotFound as error:
            raise Http404(error.message) from None
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        inline = content_type in INLINE_TYPES and "download" not in request.GET
        return FileResponse(
            open(file, "rb"),  # FileResponse closes it
            as_attachment=not inline,
            filename=file.name,
            content_type=content_type,
        )

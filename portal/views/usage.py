"""Usage: requests per day for the last 30 days and the tenant's current rate-limit status."""

from django.utils import timezone

from portal.access import tenant_view
from portal.selectors import tenant_ratelimit_status
from portal.views.layout import render_tenant
from tenants.charts import usage_chart
from tenants.selectors import tenant_limits, usage_daily

DAYS = 30


@tenant_view()
def usage(request, membership):
    """Chart the tenant's daily requests and show its limits and current window."""
    tenant = membership.tenant
    rows = usage_daily(tenant, days=DAYS)
    counts = {row["day"]: row["requests"] for row in rows}
    chart = usage_chart(rows, title="Requests per day (UTC)")
    per_minute, burst, daily_quota = tenant_limits(tenant)
    today = counts.get(timezone.now().date(), 0)
    context = {
        "chart": chart,
        "served_total": sum(counts.values()),
        "served_peak": max(counts.values(), default=0),
        "today": today,
        "quota_percent": min(100, round(100 * today / daily_quota)) if daily_quota else None,
        "status": tenant_ratelimit_status(tenant),
        "days": DAYS,
        "limits": {"per_minute": per_minute, "burst": burst, "daily_quota": daily_quota},
    }
    return render_tenant(request, membership, "portal/usage.html", context, section="usage")

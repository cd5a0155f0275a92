"""Usage: served and refused requests per day for the last 30 days and the tenant's current rate-limit status."""

from portal.access import tenant_view
from portal.selectors import tenant_ratelimit_status
from portal.views.layout import render_tenant
from tenants.charts import usage_chart
from tenants.selectors import tenant_limits, usage_daily

DAYS = 30


@tenant_view()
def usage(request, membership):
    """Chart the tenant's daily requests, list served and refused ones per day, show its limits and window."""
    tenant = membership.tenant
    rows = usage_daily(tenant, days=DAYS)
    counts = {row["day"]: row["requests"] for row in rows}
    chart = usage_chart(rows, title="Requests per day (UTC)")
    per_minute, burst, daily_quota = tenant_limits(tenant)
    # The gateway counts what it served as `requests` and each refusal under its own metric.
    days = [
        {
            "day": row["day"],
            "served": row["requests"],
            "rate_limited": row.get("rate_limited", 0),
            "quota_exceeded": row.get("quota_exceeded", 0),
        }
        for row in reversed(rows)
    ]
    today = days[0]["served"] if days else 0
    context = {
        "chart": chart,
        "served_total": sum(counts.values()),
        "served_peak": max(counts.values(), default=0),
        "today_usage": days[0] if days else None,
        "refused": {
            "rate_limited": sum(day["rate_limited"] for day in days),
            "quota_exceeded": sum(day["quota_exceeded"] for day in days),
        },
        "today": today,
        "quota_percent": min(100, round(100 * today / daily_quota)) if daily_quota else None,
        "status": tenant_ratelimit_status(tenant),
        "days": DAYS,
        "limits": {"per_minute": per_minute, "burst": burst, "daily_quota": daily_quota},
    }
    return render_tenant(request, membership, "portal/usage.html", context, section="usage")

/* SPDX-License-Identifier: MIT */
/* GET /metrics: every layer's counters in the Prometheus text format. */
#ifndef RINGCAST_SESSION_METRICS_PAGE_H
#define RINGCAST_SESSION_METRICS_PAGE_H

#include "session.h"

/* Renders into a malloc'd buffer; returns its length or -ENOMEM. Any shard. */
long rc_metrics_page_render(const struct rc_server *srv, char **out);

#endif

/*
 * log.c - leveled logging to stderr, one write(2) per message so lines from
 * different threads never interleave.
 *
 * Format: "2024-05-01T12:00:00.123Z LEVEL component: message\n" (UTC).
 * The level and debug-component set are written at startup or by the
 * management API and read on every LOG_DEBUG; they are atomics so readers on
 * other threads never see a torn value.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3tgt/core.h"
#include "s3tgt/log.h"

#define LOG_LINE_MAX 1024
#define LOG_DEBUG_LIST_MAX 256
/* LOG_RATELIMIT lets this many messages per call site through per second. */
#define LOG_RATELIMIT_BURST 10

static atomic_int g_log_level = LOG_LEVEL_INFO;
static atomic_bool g_log_debug_all;
static atomic_bool g_log_debug_some;
/* g_log_debug_lock protects g_log_debug_list (a ",a,b," string); leaf lock. */
static pthread_mutex_t g_log_debug_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_log_debug_list[LOG_DEBUG_LIST_MAX];

static const char *const g_level_names[] = {
    [LOG_LEVEL_ERR] = "ERR",
    [LOG_LEVEL_WARN] = "WARN",
    [LOG_LEVEL_INFO] = "INFO",
    [LOG_LEVEL_DEBUG] = "DEBUG",
};

void log_set_level(enum log_level lvl)
{
	atomic_store(&g_log_level, (int)lvl);
}

void log_set_debug(const char *components)
{
	bool all = false;
	size_t n;

	pthread_mutex_lock(&g_log_debug_lock);
	g_log_debug_list[0] = '\0';
	if (components && *components) {
		all = strcmp(components, "all") == 0;
		n = (size_t)snprintf(g_log_debug_list, sizeof(g_log_debug_list), ",%s,",
				     components);
		if (n >= sizeof(g_log_debug_list)) {
			/* Too long to match reliably: treat as everything rather than silently
			 * nothing. */
			all = true;
		}
	}
	atomic_store(&g_log_debug_all, all);
	atomic_store(&g_log_debug_some, g_log_debug_list[0] != '\0');
	pthread_mutex_unlock(&g_log_debug_lock);
}

static bool debug_component_on(const char *component)
{
	char needle[72];
	bool on;
	int n;

	if (atomic_load(&g_log_debug_all)) {
		return true;
	}
	if (!atomic_load(&g_log_debug_some) || !component) {
		return false;
	}
	n = snprintf(needle, sizeof(needle), ",%s,", component);
	if (n < 0 || (size_t)n >= sizeof(needle)) {
		return false;
	}
	pthread_mutex_lock(&g_log_debug_lock);
	on = strstr(g_log_debug_list, needle) != NULL;
	pthread_mutex_unlock(&g_log_debug_lock);
	return on;
}

bool log_enabled(enum log_level lvl, const char *component)
{
	if ((int)lvl <= atomic_load(&g_log_level)) {
		return true;
	}
	return lvl == LOG_LEVEL_DEBUG && debug_component_on(component);
}

void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len;
	va_list ap;
	int n;

	if (lvl != LOG_LEVEL_DEBUG && !log_enabled(lvl, component)) {
		return;
	}
	if ((unsigned)lvl > LOG_LEVEL_DEBUG) {
		lvl = LOG_LEVEL_DEBUG;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000, g_level_names[lvl], component ? component : "-");
	if (n < 0) {
		return;
	}
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		n = 0;
	}
	len += (size_t)n;
	if (len > sizeof(line) - 2) {
		/* Truncated: keep the newline so the next message starts on its own line. */
		len = sizeof(line) - 2;
	}
	line[len++] = '\n';
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			break;
		}
		off += (size_t)w;
	}
}

bool log_ratelimit_ok(unsigned *count, unsigned long *window)
{
	unsigned long now = (unsigned long)(reactor_now_ms() / 1000);

	if (__atomic_load_n(window, __ATOMIC_RELAXED) != now) {
		__atomic_store_n(window, now, __ATOMIC_RELAXED);
		__atomic_store_n(count, 0, __ATOMIC_RELAXED);
	}
	return __atomic_fetch_add(count, 1, __ATOMIC_RELAXED) < LOG_RATELIMIT_BURST;
}

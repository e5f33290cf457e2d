/*
 * log.h - leveled logging to stderr: "LEVEL component: message".
 * Per-I/O errors go through LOG_RATELIMIT so a failing disk cannot flood the log.
 * Secrets are never passed to these functions.
 */
#ifndef S3TGT_LOG_H
#define S3TGT_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level lvl);
/* Enable debug output for a comma-separated list of components ("iscsi,scsi") or "all". */
void log_set_debug(const char *components);
bool log_enabled(enum log_level lvl, const char *component);
void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* True at most `burst` times per second for this call site's state. */
bool log_ratelimit_ok(unsigned *count, unsigned long *window);

#define LOG_ERR(comp, ...) log_msg(LOG_LEVEL_ERR, comp, __VA_ARGS__)
#define LOG_WARN(comp, ...) log_msg(LOG_LEVEL_WARN, comp, __VA_ARGS__)
#define LOG_INFO(comp, ...) log_msg(LOG_LEVEL_INFO, comp, __VA_ARGS__)
#define LOG_DEBUG(comp, ...)                                   \
	do {                                                   \
		if (log_enabled(LOG_LEVEL_DEBUG, comp)) {      \
			log_msg(LOG_LEVEL_DEBUG, comp, __VA_ARGS__); \
		}                                              \
	} while (0)
#define LOG_RATELIMIT(lvl, comp, ...)                                  \
	do {                                                           \
		static unsigned log_rl_count_;                         \
		static unsigned long log_rl_window_;                   \
		if (log_ratelimit_ok(&log_rl_count_, &log_rl_window_)) { \
			log_msg(lvl, comp, __VA_ARGS__);               \
		}                                                      \
	} while (0)

#endif

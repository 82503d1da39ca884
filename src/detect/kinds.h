/* The detector kinds compiled into recoverd; detector.c lists them. */
#ifndef RECOVERD_DETECT_KINDS_H
#define RECOVERD_DETECT_KINDS_H

#include "detect/detector.h"

extern const struct detector_ops http_detector;     /* detect/http.c */
extern const struct detector_ops tcp_detector;      /* detect/tcp.c */
extern const struct detector_ops command_detector;  /* detect/command.c */
extern const struct detector_ops resource_detector; /* detect/resource.c */

#endif

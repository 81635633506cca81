/* warden guest library: shared between its source files, not installed. */
#ifndef __WARDEN_INTERNAL_H
#define __WARDEN_INTERNAL_H

#include <warden/abi.h>

/* Bumped every time a handler installed without SA_RESTART runs: a call
 * that the host interrupted with EINTR is restarted when this did not move
 * (the handlers that ran asked for SA_RESTART, or none ran because the
 * signal was blocked), as Linux restarts it. */
extern volatile unsigned __warden_signal_norestart;

/* Bumped every time a handler runs (pause and sigsuspend return then). */
extern volatile unsigned __warden_signal_delivered;

#endif

/* warden guest library: counters shared by the signal code and the calls
 * that restart after a handler (see internal.h). Pulled in by either, with
 * no import of its own. */
#include "internal.h"

volatile unsigned __warden_signal_norestart;
volatile unsigned __warden_signal_delivered;

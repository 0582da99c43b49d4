/*
 * core/smtp_early.h - early rejects before the SMTP greeting: the
 * optional greeting delay (smtp.greeting_delay) and the pregreet test
 * it makes possible. Private to the core.
 */
#ifndef MERPATI_SMTP_EARLY_H
#define MERPATI_SMTP_EARLY_H

#include "smtp_session.h"

/*
 * Hold the greeting for smtp.greeting_delay and watch the client: 1
 * when it may be greeted now (it kept quiet, or there is no delay);
 * 0 when it sent something first (it got 554 5.5.1) or went away, and
 * the session is to end.
 */
int smtp_greeting_wait(struct session *s);

#endif

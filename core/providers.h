/*
 * core/providers.h - picking the module that provides each kind the
 * core calls, once the modules are loaded. Private to the core.
 */
#ifndef MERPATI_PROVIDERS_H
#define MERPATI_PROVIDERS_H

#include "config.h"

/*
 * Set mp_core.auth, deliver, route, resolve, retry and store from
 * mp_core.modules; a missing deliver module, a server.mailstore that
 * names no loaded store, or domains without an auth module are added
 * to problems.
 */
void mp_providers_pick(struct mp_problems *problems);

#endif

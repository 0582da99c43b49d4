/* merpati/merpati.h - everything a module may include, in one header. */
#ifndef MERPATI_MERPATI_H
#define MERPATI_MERPATI_H

#include <merpati/module.h>
#include <merpati/auth.h>
#include <merpati/deliver.h>
#include <merpati/route.h>
#include <merpati/resolve.h>
#include <merpati/retry.h>
#include <merpati/store.h>
#include <merpati/filter.h>
#include <merpati/protocol.h>

#endif

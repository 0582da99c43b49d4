/*
 * core/reload.h - configuration snapshots and reload (SIGHUP, `merpati
 * reload`).
 *
 * A snapshot is a whole struct mp_core_config: settings, domains, relay
 * networks, TLS context and loaded module instances. A session (from
 * accept to close) and a delivery attempt hold the snapshot that was
 * newest when they started, so they finish on it. A reload builds a
 * new snapshot with exactly the checks of `merpati check-config`; any
 * problem and the running one stays, each problem logged. Listeners are added, removed and changed
 * (listener.h); what a reload cannot change (server.*, queue.workers,
 * metrics) keeps its running value and the log says a restart is
 * needed (docs/operations.md).
 *
 * A replaced snapshot is freed by the main thread (mp_reload_collect)
 * once no hold counts it: its config tree, lists, TLS context
 * references and the module instances no newer snapshot reuses (fini
 * runs then). An instance a reload reuses belongs to every snapshot
 * listing it and ends with the last; the config trees it was
 * initialised or reloaded from live as long as it does. The start-up
 * snapshot (settings.c's static mp_core_boot) is retired and freed like
 * any other, its struct aside: the acceptors know only their live
 * listeners (listener.c), never a snapshot.
 *
 * The rule for code that reads mp_core (settings.h): a thread other
 * than the main one reads it only between mp_core_hold() and
 * mp_core_release(), and keeps no pointer into it past the release.
 * Sessions and delivery attempts hold for their whole length; threads
 * that wait (acceptors, queue workers, the maildrop pickup) hold for
 * each turn of work and never while they wait. The main thread may
 * read mp_core unheld: it is the only one that frees.
 */
#ifndef MERPATI_RELOAD_H
#define MERPATI_RELOAD_H

#include <stddef.h>

/* Hold the newest snapshot for this thread's session, attempt or turn
 * of work; release when it ends. Not nested. Lock-free (two counters). */
void mp_core_hold(void);
void mp_core_release(void);

/* Free the replaced snapshots nothing holds any more. Main thread
 * only: after each reload and about once a second while it waits for
 * signals. */
void mp_reload_collect(void);

/* Record the files the start-up TLS context was made from, so a reload
 * re-reads them only when they changed. */
void mp_reload_note_tls(void);

/*
 * Build, check and publish a new snapshot from file and overrides (as
 * merpatid was started). Called by the main thread, one at a time.
 * Returns 0 when published, -1 when refused (problems logged).
 */
int mp_reload(const char *file, char *const *overrides, size_t noverrides);

/*
 * For the loader during a reload: when the running snapshot has module
 * name from the same path with settings equal to group (or changed
 * ones its reload op will take), *m becomes one more user of that
 * instance (mp_module_share: it ends with the last snapshot listing
 * it) and 1 is returned; else 0. Modules whose settings changed are loaded
 * and initialised anew; one that cannot be (say, a file only root can
 * open) fails the reload with its reason.
 */
struct mp_loaded;
int mp_reload_reuse_module(const char *name, const char *path,
    const void *group, struct mp_loaded *m);
/* 1 while a reload is building its snapshot. */
int mp_reload_running(void);

/* 1 when two libconfig settings (config_setting_t) are equal: same
 * type, names, values and members, in order. */
int mp_cfg_setting_equal(const void *a, const void *b);

#endif

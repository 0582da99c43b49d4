/*
 * core/confine.h - the daemon's last step before its threads start:
 * PR_SET_NO_NEW_PRIVS, then a Landlock domain limiting which files it
 * can reach (see docs/security.md, "Confinement").
 */
#ifndef MERPATI_CONFINE_H
#define MERPATI_CONFINE_H

/*
 * Set no_new_privs and, when use_landlock and the kernel offers
 * Landlock ABI 2 or later, restrict the calling thread (and every
 * thread it starts afterwards) to the paths the configuration names.
 * Logs one line saying what was done. 0, or -1 with the reason in err
 * (no_new_privs could not be set, or a Landlock call failed).
 */
int mp_confine(int use_landlock, char *err, size_t errsize);

#endif

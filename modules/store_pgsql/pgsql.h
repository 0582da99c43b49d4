/*
 * modules/store_pgsql/pgsql.h - what the store_pgsql sources share: the
 * module's state, the connection pool (pool.c), the prepared statements
 * (schema.c) and the LISTEN thread that wakes IDLE (listen.c).
 */
#ifndef STORE_PGSQL_H
#define STORE_PGSQL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>
#include <merpati/merpati.h>

#include "store_folders.h"
#include "store_snapshot.h"

#define CHUNK 65536		/* octets per message_chunks row */
#define NOTIFY_CHANNEL "merpati_store"

/* The prepared statements, named "s<index>" on every connection. */
enum stmt {
	Q_FOLDER_ID, Q_FOLDER_NEW, Q_FOLDERS, Q_FOLDER_DELETE, Q_FOLDER_RENAME,
	Q_SUBSCRIBE, Q_FOLDER_STATE, Q_CLAIM, Q_MESSAGES, Q_MSG_FIND,
	Q_CHUNK_READ, Q_CHUNK_WRITE, Q_MSG_STAGE, Q_PLACE_NEXT, Q_PLACE_AT,
	Q_NOTIFY, Q_FLAGS_GET, Q_FLAGS_PUT, Q_KW_FIND, Q_KW_COUNT, Q_KW_ADD,
	Q_KW_LIST, Q_EXPUNGE, Q_PURGE, Q_MSG_ROW, Q_CHUNKS_COPY, Q_UIDVALIDITY_SET,
	Q_DELIVERED, Q_MSG_COUNT, Q_CHANGES, Q_BUMP, Q_COUNT_
};

struct conn {
	PGconn *pg;
	int busy;
	struct timespec retry_at;	/* no reconnect before (backoff) */
	long backoff_ms;
};

struct store {
	const struct mp_host *host;
	const char *conninfo;
	const char *password_file;
	long long pool_size;
	char *password;			/* from password_file, or NULL */
	pthread_mutex_t lock;		/* pool, open folder list */
	pthread_cond_t freed;
	struct conn *pool;
	_Atomic int schema_ok;	/* checked by the first connection */
	struct mp_folder **open;	/* for change notification */
	size_t nopen, open_cap;
	pthread_t listener;
	int listener_started, stop_fd;
};

struct mp_folder {
	struct mp_mailbox *mb;
	long long id;
	PGconn *lock_conn;	/* holds the POP3 advisory lock, or NULL */
	int loaded;		/* the snapshot holds the folder as of modseq */
	long long modseq, expunges;	/* folders' counters when last read */
	int event_fd;		/* signalled when the folder may have changed */
	struct store_snapshot snap;	/* messages, \Recent claims */
};

/* pool.c */
PGconn *pg_connect(struct store *s, const char **error_r);
int pool_get(struct store *s, struct conn **c_r, const char **error_r);
void pool_put(struct store *s, struct conn *c);
void pool_fini(struct store *s);
int pg_fail(struct store *s, struct conn *c, PGresult *res, const char **error_r);

/* Parameters of one statement, all as text but for one binary blob. */
struct params {
	char num[8][24];
	const char *v[8];
	int len[8], fmt[8];
	int n;
};
void p_int(struct params *p, long long v);
void p_text(struct params *p, const char *v);
void p_blob(struct params *p, const void *v, size_t len);
/* Run a prepared statement; NULL on failure (then pg_fail). binary:
 * results in binary format. */
PGresult *run(struct conn *c, enum stmt q, const struct params *p, int binary);
const char *last_sqlstate(void);
int run_ok(PGresult *res);	/* command or tuples */
int tx(struct conn *c, const char *cmd);	/* BEGIN / COMMIT / ROLLBACK */
long long col_int(PGresult *res, int row, int col);

/* schema.c */
int schema_setup(struct store *s, PGconn *pg, const char **error_r);
int prepare_all(PGconn *pg, const char **error_r);
int schema_init(PGconn *pg, int *version_r, const char **error_r);

/* listen.c */
int listener_start(struct store *s);
void listener_stop(struct store *s);
void wake_folder(struct store *s, long long folder);	/* lock held */
void wake_all(struct store *s);				/* lock held */

#endif

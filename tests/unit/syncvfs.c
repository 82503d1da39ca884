/* See syncvfs.h. Every method but xSync passes through to "unix". */
#include "syncvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <string.h>

struct syncvfs_file {
    sqlite3_file base;
    sqlite3_file *real; /* right after this struct, in the same allocation */
};

static sqlite3_vfs *syncvfs__unix;
static sqlite3_vfs syncvfs__vfs;
static pthread_t syncvfs__own;
static pthread_mutex_t syncvfs__lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t syncvfs__cond = PTHREAD_COND_INITIALIZER;
static unsigned syncvfs__own_n, syncvfs__others_n, syncvfs__held_n;
static bool syncvfs__holding;
static bool syncvfs__refusing; /* the test's own writes fail: a full disk */

#define REAL(f) (((struct syncvfs_file *)(f))->real)

static int syncvfs__sync(sqlite3_file *f, int flags)
{
    pthread_mutex_lock(&syncvfs__lock);
    if (pthread_equal(pthread_self(), syncvfs__own)) {
        syncvfs__own_n++;
    } else {
        syncvfs__others_n++;
        syncvfs__held_n++;
        while (syncvfs__holding)
            pthread_cond_wait(&syncvfs__cond, &syncvfs__lock);
        syncvfs__held_n--;
    }
    pthread_mutex_unlock(&syncvfs__lock);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int syncvfs__close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int syncvfs__read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int syncvfs__write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    pthread_mutex_lock(&syncvfs__lock);
    bool full = syncvfs__refusing && pthread_equal(pthread_self(), syncvfs__own);
    pthread_mutex_unlock(&syncvfs__lock);
    if (full)
        return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int syncvfs__truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int syncvfs__size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int syncvfs__lockf(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int syncvfs__unlockf(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int syncvfs__reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int syncvfs__control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int syncvfs__sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int syncvfs__device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int syncvfs__shm_map(sqlite3_file *f, int pg, int size, int extend, void volatile **out)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, size, extend, out);
}
static int syncvfs__shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void syncvfs__shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int syncvfs__shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int syncvfs__fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **out)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, out);
}
static int syncvfs__unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static sqlite3_io_methods syncvfs__io = {
    3,
    syncvfs__close,
    syncvfs__read,
    syncvfs__write,
    syncvfs__truncate,
    syncvfs__sync,
    syncvfs__size,
    syncvfs__lockf,
    syncvfs__unlockf,
    syncvfs__reserved,
    syncvfs__control,
    syncvfs__sector,
    syncvfs__device,
    syncvfs__shm_map,
    syncvfs__shm_lock,
    syncvfs__shm_barrier,
    syncvfs__shm_unmap,
    syncvfs__fetch,
    syncvfs__unfetch,
};

static int syncvfs__open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                         int *out_flags)
{
    (void)vfs;
    struct syncvfs_file *sf = (struct syncvfs_file *)f;
    sf->real = (sqlite3_file *)(sf + 1);
    memset(sf->real, 0, (size_t)syncvfs__unix->szOsFile);
    f->pMethods = NULL;
    int rc = syncvfs__unix->xOpen(syncvfs__unix, name, sf->real, flags, out_flags);
    if (sf->real->pMethods)
        f->pMethods = &syncvfs__io;
    return rc;
}

static int syncvfs__delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return syncvfs__unix->xDelete(syncvfs__unix, name, sync_dir);
}
static int syncvfs__access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return syncvfs__unix->xAccess(syncvfs__unix, name, flags, out);
}
static int syncvfs__full(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return syncvfs__unix->xFullPathname(syncvfs__unix, name, n, out);
}
static int syncvfs__random(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return syncvfs__unix->xRandomness(syncvfs__unix, n, out);
}
static int syncvfs__sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return syncvfs__unix->xSleep(syncvfs__unix, us);
}
static int syncvfs__time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return syncvfs__unix->xCurrentTime(syncvfs__unix, out);
}
static int syncvfs__error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return syncvfs__unix->xGetLastError(syncvfs__unix, n, out);
}
static int syncvfs__time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return syncvfs__unix->xCurrentTimeInt64(syncvfs__unix, out);
}

void syncvfs_install(void)
{
    syncvfs__unix = sqlite3_vfs_find("unix");
    syncvfs__own = pthread_self();
    syncvfs__own_n = syncvfs__others_n = 0;
    syncvfs__vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct syncvfs_file) + syncvfs__unix->szOsFile,
        .mxPathname = syncvfs__unix->mxPathname,
        .zName = "syncvfs",
        .xOpen = syncvfs__open,
        .xDelete = syncvfs__delete,
        .xAccess = syncvfs__access,
        .xFullPathname = syncvfs__full,
        .xRandomness = syncvfs__random,
        .xSleep = syncvfs__sleep,
        .xCurrentTime = syncvfs__time,
        .xGetLastError = syncvfs__error,
        .xCurrentTimeInt64 = syncvfs__time64,
    };
    sqlite3_vfs_register(&syncvfs__vfs, 1);
}

void syncvfs_remove(void)
{
    syncvfs_hold(false);
    syncvfs_full(false);
    sqlite3_vfs_unregister(&syncvfs__vfs);
    sqlite3_vfs_register(syncvfs__unix, 1);
}

static unsigned syncvfs__get(const unsigned *n)
{
    pthread_mutex_lock(&syncvfs__lock);
    unsigned v = *n;
    pthread_mutex_unlock(&syncvfs__lock);
    return v;
}

unsigned syncvfs_own(void)
{
    return syncvfs__get(&syncvfs__own_n);
}

unsigned syncvfs_others(void)
{
    return syncvfs__get(&syncvfs__others_n);
}

unsigned syncvfs_held(void)
{
    return syncvfs__get(&syncvfs__held_n);
}

void syncvfs_hold(bool on)
{
    pthread_mutex_lock(&syncvfs__lock);
    syncvfs__holding = on;
    pthread_cond_broadcast(&syncvfs__cond);
    pthread_mutex_unlock(&syncvfs__lock);
}

void syncvfs_full(bool on)
{
    pthread_mutex_lock(&syncvfs__lock);
    syncvfs__refusing = on;
    pthread_mutex_unlock(&syncvfs__lock);
}

/*
 * limit-responder: a do-nothing ONC RPC responder for measuring the limit of a benchmark.
 *
 * THIS IS NOT AN NFS SERVER. It is a reference for measurement: it answers the calls
 * `swiftnfsd bench` makes (NULL, MOUNT v3, and the NFSv3 procedures of its workloads) from
 * memory, touching no file system, keeping no state between calls, and trusting every caller.
 * What it reaches is what the client, loopback TCP and the machine allow; a server's throughput
 * divided by this responder's is the share of that limit the server reaches (issue 16).
 *
 * Wire formats: RFC 5531 (RPC messages, record marking §11), RFC 4506 (XDR), RFC 1813 (NFSv3,
 * and MOUNT v3 in its appendix I).
 *
 * Transport: TCP on one port, for every program. The main thread accepts connections and hands
 * them round-robin to one epoll loop per core (an even spread: SO_REUSEPORT's hash can put 3 of
 * 4 connections on one thread). A connection lives on its loop only; the loops share nothing
 * writable except the lazily made data pattern below. Records may come in several fragments
 * (reassembled); a record above MAX_RECORD, or a call whose header cannot be read, closes the
 * connection. A connection whose replies the peer does not read stops being read (at most
 * OUT_HIGH bytes of replies are queued), so a peer cannot make it grow without bound.
 *
 * The namespace is computed, not stored. A file handle (16 bytes) holds a magic, the depth
 * below the export root, the kind of node, the bench workload it belongs to and a file id;
 * LOOKUP, CREATE and MKDIR derive the child's handle from the parent's and the name, so a name
 * always gets the same handle. LOOKUP finds every name: a directory down to depth 3 (the bench's
 * .swiftnfs-bench/run-NAME/WORKLOAD), a regular file below. Directories list empty; REMOVE, RMDIR,
 * SETATTR and COMMIT succeed and change nothing; WRITE takes every byte and drops it.
 *
 * READ data: the bench compares every byte it reads with the pattern it wrote
 * (Sources/Bench/DataPattern.swift: byte o is byte o % 8, little-endian, of mix(o / 8 ^ seed)).
 * A responder that returned zeros would fail that check, so the files of a workload directory
 * named as the bench names them hold that workload's pattern, made once in memory on the first
 * READ (64 MiB for the 4 KiB workloads, 128 MiB for the 1 MiB ones: -s and -S, as the bench's
 * --file-size and --sequential-file-size); a READ copies from it, as a server copies from the
 * page cache. Files elsewhere are empty.
 *
 * Build: gcc -O2 -pthread -o limit-responder limit-responder.c
 * Run:   limit-responder -p PORT [-a ADDRESS] [-t THREADS] [-s MiB] [-S MiB]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Limits. A record holds at most a 1 MiB WRITE (FSINFO's wtmax) and its headers. */
#define MAX_TRANSFER (1u << 20)             /* rtmax and wtmax, as SwiftNFS offers */
#define MAX_RECORD (MAX_TRANSFER + 65536u)  /* RFC 5531 §11: the receiver bounds a record */
#define OUT_HIGH (4u << 20)                 /* queued reply bytes before reading stops */
#define MAX_AUTH 400                        /* RFC 5531 §8.2: opaque_auth body<400> */
#define MAX_FH 64                           /* RFC 1813 §2.4: NFS3_FHSIZE */
#define MAX_NAME 255                        /* filename3 as the bench and Linux send it */
#define MAX_PATH 1024                       /* RFC 1813 §5.1: MNTPATHLEN */

/* Programs and procedures (RFC 1813; RFC 5531 §9). */
enum { PROG_NFS = 100003, PROG_MOUNT = 100005 };
enum { NFS_NULL, NFS_GETATTR, NFS_SETATTR, NFS_LOOKUP, NFS_ACCESS, NFS_READLINK, NFS_READ, NFS_WRITE,
       NFS_CREATE, NFS_MKDIR, NFS_SYMLINK, NFS_MKNOD, NFS_REMOVE, NFS_RMDIR, NFS_RENAME, NFS_LINK,
       NFS_READDIR, NFS_READDIRPLUS, NFS_FSSTAT, NFS_FSINFO, NFS_PATHCONF, NFS_COMMIT };
enum { MNT_NULL = 0, MNT_MNT = 1, MNT_UMNT = 3 };
/* accept_stat (RFC 5531 §9) */
enum { SUCCESS, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS };
/* nfsstat3 (RFC 1813 §2.6) */
enum { NFS3_OK = 0, NFS3ERR_NOTDIR = 20, NFS3ERR_INVAL = 22, NFS3ERR_BADHANDLE = 10001 };
enum { NF3REG = 1, NF3DIR = 2 };

/* ---- XDR (RFC 4506): a bounded reader and a growing writer ---------------------------- */

typedef struct { const uint8_t *p; size_t n; int bad; } xdr_in;

static uint32_t get32(xdr_in *x) {
    if (x->n < 4) { x->bad = 1; x->n = 0; return 0; }
    uint32_t v = (uint32_t)x->p[0] << 24 | (uint32_t)x->p[1] << 16 | (uint32_t)x->p[2] << 8 | x->p[3];
    x->p += 4; x->n -= 4;
    return v;
}
static uint64_t get64(xdr_in *x) { uint64_t hi = get32(x); return hi << 32 | get32(x); }
static int get_bool(xdr_in *x) { uint32_t b = get32(x); if (b > 1) x->bad = 1; return (int)b; }

/* Fixed-length opaque of n bytes plus padding, which must be zero (RFC 4506 §4.9). */
static const uint8_t *get_fixed(xdr_in *x, uint32_t n) {
    size_t padded = ((size_t)n + 3) & ~(size_t)3;
    if (x->bad || x->n < padded) { x->bad = 1; x->n = 0; return NULL; }
    const uint8_t *p = x->p;
    for (size_t i = n; i < padded; i++) if (p[i]) x->bad = 1;
    x->p += padded; x->n -= padded;
    return p;
}
/* Variable-length opaque (or string) of at most max bytes (RFC 4506 §4.10). */
static const uint8_t *get_opaque(xdr_in *x, uint32_t max, uint32_t *len) {
    *len = get32(x);
    if (*len > max) { x->bad = 1; *len = 0; return NULL; }
    return get_fixed(x, *len);
}

typedef struct { uint8_t *p; size_t len, cap; } buf;

static void reserve(buf *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) { perror("limit-responder: realloc"); abort(); }
    b->p = p; b->cap = cap;
}
static void put32(buf *b, uint32_t v) {
    reserve(b, 4);
    uint8_t *p = b->p + b->len;
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
    b->len += 4;
}
static void put64(buf *b, uint64_t v) { put32(b, v >> 32); put32(b, (uint32_t)v); }
/* Opaque bytes with zero padding; with_length for variable-length opaque. */
static void put_bytes(buf *b, const void *src, uint32_t n, int with_length) {
    if (with_length) put32(b, n);
    size_t padded = ((size_t)n + 3) & ~(size_t)3;
    reserve(b, padded);
    memcpy(b->p + b->len, src, n);
    memset(b->p + b->len + n, 0, padded - n);
    b->len += padded;
}

/* ---- The bench's data pattern ------------------------------------------------------- */

/* Workload directories named as the bench names them (Sources/Bench/Workloads+IO.swift),
 * with the seed of the pattern their files hold and which size (-s or -S) the files have.
 * Index 0: any other directory, whose files are empty. */
static const struct { const char *name; uint64_t seed; int sequential; } workloads[] = {
    {"", 0, 0},
    {"read4k", 0x4B, 0}, {"write4k-unstable", 0x57, 0}, {"write4k-filesync", 0x57, 0},
    {"read1m", 0x52, 1}, {"write1m-unstable", 0x43, 1}, {"write1m-commit", 0x43, 1},
};
#define WORKLOADS (sizeof workloads / sizeof workloads[0])
static uint64_t file_size = 64u << 20, sequential_size = 128u << 20;
static _Atomic(uint8_t *) patterns[WORKLOADS];
static pthread_mutex_t pattern_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t workload_size(unsigned w) {
    return w == 0 ? 0 : workloads[w].sequential ? sequential_size : file_size;
}

/* SplitMix64's finaliser, as DataPattern.mix. */
static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The whole content of workload w's files, made on first use (sizes are multiples of 8). */
static const uint8_t *pattern(unsigned w) {
    uint8_t *p = atomic_load_explicit(&patterns[w], memory_order_acquire);
    if (p) return p;
    pthread_mutex_lock(&pattern_lock);
    p = atomic_load_explicit(&patterns[w], memory_order_relaxed);
    if (!p) {
        uint64_t size = workload_size(w);
        if (!(p = malloc(size))) { perror("limit-responder: pattern"); abort(); }
        for (uint64_t i = 0; i < size / 8; i++) {
            uint64_t word = htole64(mix(i ^ workloads[w].seed));
            memcpy(p + i * 8, &word, 8);
        }
        atomic_store_explicit(&patterns[w], p, memory_order_release);
    }
    pthread_mutex_unlock(&pattern_lock);
    return p;
}

/* ---- The computed namespace ---------------------------------------------------------- */

#define FH_MAGIC 0x4c494d54u  /* "LIMT" */
typedef struct { uint8_t depth, type, workload; uint64_t id; } node;
static const node root = {0, NF3DIR, 0, 1};

static void put_fh(buf *b, const node *n) {
    put32(b, 16);
    put32(b, FH_MAGIC);
    put32(b, (uint32_t)n->depth << 16 | (uint32_t)n->type << 8 | n->workload);
    put64(b, n->id);
}

/* Reads nfs_fh3; returns 0, or NFS3ERR_BADHANDLE for a handle this responder did not make. */
static uint32_t get_fh(xdr_in *x, node *n) {
    uint32_t len;
    const uint8_t *p = get_opaque(x, MAX_FH, &len);
    if (x->bad) return 0;
    if (len != 16) return NFS3ERR_BADHANDLE;
    xdr_in h = {p, 16, 0};
    uint32_t magic = get32(&h), fields = get32(&h);
    n->depth = fields >> 16; n->type = fields >> 8; n->workload = fields;
    n->id = get64(&h);
    if (magic != FH_MAGIC || fields >> 24 || (n->type != NF3REG && n->type != NF3DIR) || n->workload >= WORKLOADS)
        return NFS3ERR_BADHANDLE;
    return 0;
}

/* The child `name` of directory `parent`: its id is a hash (FNV-1a) of the parent's and the name. */
static node child(const node *parent, const uint8_t *name, uint32_t len, int type) {
    node c = {parent->depth < 250 ? parent->depth + 1 : 250, (uint8_t)type, parent->workload, 0};
    uint64_t h = 0xcbf29ce484222325ull ^ parent->id;
    for (uint32_t i = 0; i < len; i++) h = (h ^ name[i]) * 0x100000001b3ull;
    c.id = h | 2;  /* never the root's id */
    if (c.depth == 3)
        for (unsigned w = 1; w < WORKLOADS; w++)
            if (strlen(workloads[w].name) == len && !memcmp(workloads[w].name, name, len)) c.workload = (uint8_t)w;
    return c;
}

/* fattr3 (RFC 1813 §2.6): fixed owner, times and modes; a file's size is its workload's. */
static void put_fattr(buf *b, const node *n) {
    uint64_t size = n->type == NF3DIR ? 4096 : workload_size(n->workload);
    put32(b, n->type);
    put32(b, n->type == NF3DIR ? 0755 : 0644);
    put32(b, n->type == NF3DIR ? 2 : 1);     /* nlink */
    put32(b, 0); put32(b, 0);                 /* uid, gid */
    put64(b, size); put64(b, size);           /* size, used */
    put32(b, 0); put32(b, 0);                 /* rdev */
    put64(b, 1);                              /* fsid */
    put64(b, n->id);                          /* fileid */
    for (int t = 0; t < 3; t++) { put32(b, 1700000000); put32(b, 0); }  /* atime, mtime, ctime */
}
static void put_post_op_attr(buf *b, const node *n) { put32(b, 1); put_fattr(b, n); }
/* wcc_data: no pre-operation attributes, the attributes after. */
static void put_wcc(buf *b, const node *n) { put32(b, 0); put_post_op_attr(b, n); }

/* sattr3 (RFC 1813 §2.6), read and ignored. */
static void get_sattr(xdr_in *x) {
    if (get_bool(x)) get32(x);  /* mode */
    if (get_bool(x)) get32(x);  /* uid */
    if (get_bool(x)) get32(x);  /* gid */
    if (get_bool(x)) get64(x);  /* size */
    for (int t = 0; t < 2; t++) {  /* atime, mtime: DONT_CHANGE, SET_TO_SERVER_TIME, SET_TO_CLIENT_TIME */
        uint32_t how = get32(x);
        if (how == 2) { get32(x); get32(x); } else if (how > 2) x->bad = 1;
    }
}

static const uint8_t write_verifier[8] = {'l', 'i', 'm', 'i', 't', 0, 0, 1};

/* ---- NFSv3 procedures: each reads its arguments and writes its results ---------------- */

/* Failure bodies (RFC 1813 §3.3): how many zero words (absent attributes) follow the status. */
static int fail_words(uint32_t proc) {
    switch (proc) {
    case NFS_GETATTR: return 0;
    case NFS_LOOKUP: case NFS_ACCESS: case NFS_READ: case NFS_READDIR: case NFS_READDIRPLUS:
    case NFS_FSSTAT: case NFS_FSINFO: case NFS_PATHCONF: return 1;
    default: return 2;  /* wcc_data */
    }
}

/* Every procedure but WRITE (nfs_write). Returns the accept_stat; on SUCCESS the results are in out. */
static int nfs_call(uint32_t proc, xdr_in *x, buf *out) {
    node n, c;
    uint32_t status, len = 0, count = 0, how = 0;
    uint64_t offset = 0;
    const uint8_t *name = NULL;
    if (proc == NFS_NULL) return SUCCESS;
    if (proc > NFS_COMMIT || proc == NFS_READLINK || proc == NFS_SYMLINK || proc == NFS_MKNOD ||
        proc == NFS_RENAME || proc == NFS_LINK)
        return PROC_UNAVAIL;
    status = get_fh(x, &n);
    switch (proc) {  /* the rest of the arguments */
    case NFS_SETATTR: get_sattr(x); if (get_bool(x)) { get32(x); get32(x); } break;
    case NFS_LOOKUP: case NFS_REMOVE: case NFS_RMDIR: name = get_opaque(x, MAX_NAME, &len); break;
    case NFS_ACCESS: how = get32(x); break;
    case NFS_READ: case NFS_COMMIT: offset = get64(x); count = get32(x); break;
    case NFS_CREATE: case NFS_MKDIR:
        name = get_opaque(x, MAX_NAME, &len);
        how = proc == NFS_MKDIR ? 0 : get32(x);  /* createmode3 */
        if (how == 2) get_fixed(x, 8); else if (how > 2) x->bad = 1; else get_sattr(x);
        break;
    case NFS_READDIR: case NFS_READDIRPLUS:
        get64(x); get_fixed(x, 8); get32(x);
        if (proc == NFS_READDIRPLUS) get32(x);
        break;
    default: break;
    }
    if (x->bad) return GARBAGE_ARGS;
    if (!status && n.type != NF3DIR && (proc == NFS_LOOKUP || proc == NFS_CREATE || proc == NFS_MKDIR ||
        proc == NFS_REMOVE || proc == NFS_RMDIR || proc == NFS_READDIR || proc == NFS_READDIRPLUS))
        status = NFS3ERR_NOTDIR;
    if (x->n) return GARBAGE_ARGS;  /* trailing bytes */
    put32(out, status);
    if (status) { for (int i = fail_words(proc); i > 0; i--) put32(out, 0); return SUCCESS; }

    switch (proc) {
    case NFS_GETATTR: put_fattr(out, &n); break;
    case NFS_SETATTR: case NFS_REMOVE: case NFS_RMDIR: put_wcc(out, &n); break;
    case NFS_LOOKUP:
        c = child(&n, name, len, n.depth < 3 ? NF3DIR : NF3REG);
        put_fh(out, &c); put_post_op_attr(out, &c); put_post_op_attr(out, &n);
        break;
    case NFS_ACCESS: put_post_op_attr(out, &n); put32(out, how & 0x3f); break;
    case NFS_READ: {
        uint64_t size = workload_size(n.workload);
        if (count > MAX_TRANSFER) count = MAX_TRANSFER;
        if (n.type != NF3REG || offset >= size) count = 0;
        else if (count > size - offset) count = (uint32_t)(size - offset);
        put_post_op_attr(out, &n);
        put32(out, count);
        put32(out, n.type == NF3REG && offset + count >= size);  /* eof */
        put_bytes(out, count ? pattern(n.workload) + offset : write_verifier, count, 1);  /* no bytes when count is 0 */
        break;
    }
    case NFS_CREATE: case NFS_MKDIR:
        c = child(&n, name, len, proc == NFS_MKDIR ? NF3DIR : NF3REG);
        put32(out, 1); put_fh(out, &c);  /* post_op_fh3 */
        put_post_op_attr(out, &c); put_wcc(out, &n);
        break;
    case NFS_READDIR: case NFS_READDIRPLUS:  /* every directory is empty */
        put_post_op_attr(out, &n); put64(out, 0); put32(out, 0); put32(out, 1);
        break;
    case NFS_FSSTAT:
        put_post_op_attr(out, &n);
        put64(out, 1ull << 40); put64(out, 1ull << 39); put64(out, 1ull << 39);  /* bytes: total, free, avail */
        put64(out, 1u << 20); put64(out, 1u << 19); put64(out, 1u << 19);         /* files */
        put32(out, 0);                                                            /* invarsec */
        break;
    case NFS_FSINFO:
        put_post_op_attr(out, &n);
        put32(out, MAX_TRANSFER); put32(out, MAX_TRANSFER); put32(out, 4096);  /* rtmax, rtpref, rtmult */
        put32(out, MAX_TRANSFER); put32(out, MAX_TRANSFER); put32(out, 4096);  /* wtmax, wtpref, wtmult */
        put32(out, 65536);                                                     /* dtpref */
        put64(out, INT64_MAX);                                                 /* maxfilesize */
        put32(out, 0); put32(out, 1);                                          /* time_delta: 1 ns */
        put32(out, 0x1b);  /* FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME */
        break;
    case NFS_PATHCONF:
        put_post_op_attr(out, &n);
        put32(out, 32000); put32(out, MAX_NAME);
        put32(out, 1); put32(out, 1); put32(out, 0); put32(out, 1);  /* no_trunc, chown_restricted, case_insensitive, case_preserving */
        break;
    case NFS_COMMIT: put_wcc(out, &n); put_bytes(out, write_verifier, 8, 0); break;
    }
    return SUCCESS;
}

/* WRITE (RFC 1813 §3.3.7): the data is read past, checked against count, and dropped. */
static int nfs_write(xdr_in *x, buf *out) {
    node n;
    uint32_t status = get_fh(x, &n), len;
    get64(x);  /* offset */
    uint32_t count = get32(x), stable = get32(x);
    get_opaque(x, MAX_TRANSFER, &len);
    if (x->bad || stable > 2) return GARBAGE_ARGS;
    if (x->n) return GARBAGE_ARGS;
    if (!status && (n.type != NF3REG || len != count)) status = NFS3ERR_INVAL;
    put32(out, status);
    if (status) { put32(out, 0); put32(out, 0); return SUCCESS; }
    put_wcc(out, &n);
    put32(out, count);
    put32(out, stable);  /* committed: as asked */
    put_bytes(out, write_verifier, 8, 0);
    return SUCCESS;
}

/* MOUNT v3 (RFC 1813 appendix I): any path mounts the computed root, AUTH_UNIX only. */
static int mount_call(uint32_t proc, xdr_in *x, buf *out) {
    uint32_t len;
    if (proc == MNT_NULL) return SUCCESS;
    if (proc != MNT_MNT && proc != MNT_UMNT) return PROC_UNAVAIL;
    get_opaque(x, MAX_PATH, &len);  /* dirpath */
    if (x->bad || x->n) return GARBAGE_ARGS;
    if (proc == MNT_MNT) {
        put32(out, 0);  /* MNT3_OK */
        put_fh(out, &root);
        put32(out, 1); put32(out, 1);  /* auth_flavors<>: AUTH_UNIX */
    }
    return SUCCESS;
}

/* ---- RPC (RFC 5531 §9): one call in, one reply out ---------------------------------- */

/* Appends the reply to one call, record mark included. Returns -1 when the call's header
 * cannot be read (the connection is then closed: there is no xid to answer). */
static int rpc_call(const uint8_t *msg, size_t n, buf *out) {
    xdr_in x = {msg, n, 0};
    uint32_t xid = get32(&x), type = get32(&x);
    if (x.bad || type != 0) return -1;  /* not a CALL */
    uint32_t rpcvers = get32(&x), prog = get32(&x), vers = get32(&x), proc = get32(&x), len;
    for (int a = 0; a < 2; a++) { get32(&x); get_opaque(&x, MAX_AUTH, &len); }  /* cred, verf: any */

    size_t mark = out->len;
    put32(out, 0);  /* record mark, set below */
    put32(out, xid);
    put32(out, 1);  /* REPLY */
    if (rpcvers != 2 && !x.bad) {
        put32(out, 1); put32(out, 0); put32(out, 2); put32(out, 2);  /* MSG_DENIED, RPC_MISMATCH 2..2 */
    } else {
        put32(out, 0);  /* MSG_ACCEPTED */
        put32(out, 0); put32(out, 0);  /* verifier: AUTH_NONE */
        size_t stat_at = out->len;
        put32(out, SUCCESS);
        int stat;
        if (x.bad) stat = GARBAGE_ARGS;
        else if (prog == PROG_NFS && vers == 3) stat = proc == NFS_WRITE ? nfs_write(&x, out) : nfs_call(proc, &x, out);
        else if (prog == PROG_MOUNT && vers == 3) stat = mount_call(proc, &x, out);
        else if (prog == PROG_NFS || prog == PROG_MOUNT) stat = PROG_MISMATCH;
        else stat = proc == 0 ? SUCCESS : PROG_UNAVAIL;  /* NULL answers for any program */
        if (stat != SUCCESS) {
            out->len = stat_at;
            put32(out, (uint32_t)stat);
            if (stat == PROG_MISMATCH) { put32(out, 3); put32(out, 3); }
        }
    }
    uint32_t size = (uint32_t)(out->len - mark - 4) | 0x80000000u;  /* one last fragment */
    uint8_t *p = out->p + mark;
    p[0] = size >> 24; p[1] = size >> 16; p[2] = size >> 8; p[3] = size;
    return 0;
}

/* ---- Connections and event loops --------------------------------------------------- */

typedef struct {
    int fd;
    buf in;       /* bytes received, not yet taken as fragments */
    buf record;   /* the fragments of a record so far, when it has several */
    buf out;      /* replies not yet sent; sent from out.p + sent */
    size_t sent;
    uint32_t events;
} conn;

typedef struct { int epoll; pthread_t thread; } loop;

static void drop(loop *l, conn *c) {
    epoll_ctl(l->epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.p); free(c->record.p); free(c->out.p); free(c);
}

enum { NEED_MORE, OUT_FULL, BROKEN };

/* Answers every complete record in c->in, until replies reach OUT_HIGH. */
static int take_records(conn *c) {
    size_t at = 0;
    int result = NEED_MORE;
    while (c->in.len - at >= 4) {
        if (c->out.len - c->sent >= OUT_HIGH) { result = OUT_FULL; break; }
        const uint8_t *h = c->in.p + at;
        uint32_t mark = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        uint32_t length = mark & 0x7fffffffu;
        int last = mark >> 31;
        if ((uint64_t)c->record.len + length > MAX_RECORD) return BROKEN;
        if (c->in.len - at - 4 < length) {  /* the fragment is not all here: make room for it */
            reserve(&c->in, 4 + length - (c->in.len - at));
            break;
        }
        const uint8_t *body = h + 4;
        at += 4 + (size_t)length;
        if (last && c->record.len == 0) {  /* the usual case: a record in one fragment */
            if (rpc_call(body, length, &c->out) < 0) return BROKEN;
            continue;
        }
        if (length) {
            reserve(&c->record, length);
            memcpy(c->record.p + c->record.len, body, length);
            c->record.len += length;
        }
        if (last) {
            if (rpc_call(c->record.p, c->record.len, &c->out) < 0) return BROKEN;
            c->record.len = 0;
        }
    }
    memmove(c->in.p, c->in.p + at, c->in.len - at);
    c->in.len -= at;
    return result;
}

static void watch(loop *l, conn *c, uint32_t events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(l->epoll, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

/* Answers what has arrived and sends what it can; returns -1 when the connection is done. */
static int serve(loop *l, conn *c) {
    for (;;) {
        int taken = take_records(c);
        if (taken == BROKEN) return -1;
        while (c->sent < c->out.len) {
            ssize_t w = send(c->fd, c->out.p + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) break;
            if (w <= 0) return -1;
            c->sent += (size_t)w;
        }
        if (c->sent < c->out.len) { watch(l, c, EPOLLOUT); return 0; }  /* the peer reads slowly */
        c->out.len = c->sent = 0;
        if (taken == NEED_MORE) { watch(l, c, EPOLLIN); return 0; }
    }
}

static int readable(loop *l, conn *c) {
    reserve(&c->in, 65536);
    ssize_t r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (r <= 0) return -1;
    c->in.len += (size_t)r;
    return serve(l, c);
}

static void *run_loop(void *arg) {
    loop *l = arg;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(l->epoll, events, 64, -1);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            int done = c->events & EPOLLOUT ? serve(l, c) : readable(l, c);
            if (done < 0) drop(l, c);
        }
    }
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: limit-responder -p PORT [-a ADDRESS] [-t THREADS] [-s MiB] [-S MiB]\n"
                    "  -p  TCP port for every program (NFS, MOUNT, NULL of any other)\n"
                    "  -a  IPv4 address to listen on (127.0.0.1)\n"
                    "  -t  event loops (one per core)\n"
                    "  -s  size of the 4 KiB workloads' files, as the bench's --file-size (64)\n"
                    "  -S  size of the 1 MiB workloads' files, as --sequential-file-size (128)\n");
    exit(64);
}

int main(int argc, char **argv) {
    const char *address = "127.0.0.1";
    int port = 0, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), opt;
    while ((opt = getopt(argc, argv, "p:a:t:s:S:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'a': address = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 's': file_size = strtoull(optarg, NULL, 10) << 20; break;
        case 'S': sequential_size = strtoull(optarg, NULL, 10) << 20; break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || threads < 1 || threads > 1024 || !file_size || !sequential_size) usage();
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (listener < 0 || inet_pton(AF_INET, address, &sa.sin_addr) != 1 ||
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(listener, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(listener, 1024) < 0) {
        perror("limit-responder: listen");
        return 1;
    }
    loop *loops = calloc((size_t)threads, sizeof *loops);
    for (int i = 0; i < threads; i++) {
        loops[i].epoll = epoll_create1(0);
        if (loops[i].epoll < 0 || pthread_create(&loops[i].thread, NULL, run_loop, &loops[i])) {
            perror("limit-responder: event loop");
            return 1;
        }
        char name[32];
        snprintf(name, sizeof name, "limit-loop-%d", i);
        name[15] = 0;  /* the kernel's limit: "limit-loop-1023" fits */
        pthread_setname_np(loops[i].thread, name);  /* as the bench's per-thread CPU names them */
    }
    pthread_setname_np(pthread_self(), "limit-accept");
    fprintf(stderr, "limit-responder: a do-nothing reference, not a server; %s:%d, %d event loops\n",
            address, port, threads);

    for (unsigned next = 0;; next++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED) perror("limit-responder: accept");
            if (errno == EMFILE || errno == ENFILE) sleep(1);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->fd = fd;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        loop *l = &loops[next % (unsigned)threads];
        if (epoll_ctl(l->epoll, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(c); }
    }
}

/*
 * tirpc_client: a small MOUNT v3 / NFSv3 client built on libtirpc, used by
 * the end-to-end tests to talk to swiftnfsd with an RPC stack this project
 * did not write. All XDR routines below are written by hand from RFC 1813.
 *
 *   cc -O1 -Wall $(pkg-config --cflags libtirpc) tirpc_client.c \
 *      $(pkg-config --libs libtirpc) -o tirpc_client
 *
 *   tirpc_client HOST PORT tcp|udp CMD ARGS...
 *
 * Commands (file handles are lower-case hex):
 *   null PROG VERS                         -> ok
 *   mnt PATH                               -> fh=HEX / flavors=1,...
 *   export                                 -> export=PATH (one per line)
 *   getattr FH                             -> type= mode= nlink= size= fileid= uid= gid=
 *   lookup DIRFH NAME                      -> fh=HEX
 *   create DIRFH NAME                      -> fh=HEX          (UNCHECKED, mode 0644)
 *   mkdir DIRFH NAME                       -> fh=HEX          (mode 0755)
 *   write FH OFFSET COUNT                  -> count= committed=  (pattern bytes, FILE_SYNC)
 *   read FH OFFSET COUNT                   -> count= eof= fnv1a64=HEX
 *   rename FROMDIRFH NAME TODIRFH NAME2    -> ok
 *   create-retransmit DIRFH NAME           -> first= second= third= lines
 *   write-multifrag DIRFH NAME SIZE        -> frags>=N / ok   (tcp only)
 *
 * The pattern byte at file offset i is (i*7+3) & 0xff.
 * Exit status: 0 success, 1 usage, 2 RPC/transport failure, 3 unexpected
 * MOUNT/NFS status or a failed check. Failures are explained on stderr.
 */
#include <rpc/rpc.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_PROG 100005
#define MOUNT_V3 3
#define MOUNTPROC3_MNT 1
#define MOUNTPROC3_EXPORT 5

#define NFS_PROG 100003
#define NFS_V3 3
#define NFSPROC3_GETATTR 1
#define NFSPROC3_LOOKUP 3
#define NFSPROC3_READ 6
#define NFSPROC3_WRITE 7
#define NFSPROC3_CREATE 8
#define NFSPROC3_MKDIR 9
#define NFSPROC3_RENAME 14

#define FHSIZE3 64
#define MNTPATHLEN 1024
#define NFS3_OK 0
#define NFS3ERR_EXIST 17

#define UNCHECKED 0
#define GUARDED 1
#define FILE_SYNC 2

#define READ_CHUNK 65536u
#define SMALL_SENDSZ 4000u

static struct timeval call_timeout = { 30, 0 };

/* ------------------------------------------------------------------ */
/* Failure reporting                                                   */

static void die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "tirpc_client: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(code);
}

static const char *nfsstat_name(uint32_t s)
{
	switch (s) {
	case 0: return "NFS3_OK";
	case 1: return "NFS3ERR_PERM";
	case 2: return "NFS3ERR_NOENT";
	case 5: return "NFS3ERR_IO";
	case 6: return "NFS3ERR_NXIO";
	case 13: return "NFS3ERR_ACCES";
	case 17: return "NFS3ERR_EXIST";
	case 18: return "NFS3ERR_XDEV";
	case 19: return "NFS3ERR_NODEV";
	case 20: return "NFS3ERR_NOTDIR";
	case 21: return "NFS3ERR_ISDIR";
	case 22: return "NFS3ERR_INVAL";
	case 27: return "NFS3ERR_FBIG";
	case 28: return "NFS3ERR_NOSPC";
	case 30: return "NFS3ERR_ROFS";
	case 31: return "NFS3ERR_MLINK";
	case 63: return "NFS3ERR_NAMETOOLONG";
	case 66: return "NFS3ERR_NOTEMPTY";
	case 69: return "NFS3ERR_DQUOT";
	case 70: return "NFS3ERR_STALE";
	case 71: return "NFS3ERR_REMOTE";
	case 10001: return "NFS3ERR_BADHANDLE";
	case 10002: return "NFS3ERR_NOT_SYNC";
	case 10003: return "NFS3ERR_BAD_COOKIE";
	case 10004: return "NFS3ERR_NOTSUPP";
	case 10005: return "NFS3ERR_TOOSMALL";
	case 10006: return "NFS3ERR_SERVERFAULT";
	case 10007: return "NFS3ERR_BADTYPE";
	case 10008: return "NFS3ERR_JUKEBOX";
	default: return "NFS3ERR_UNKNOWN";
	}
}

static void expect_nfs_ok(const char *what, uint32_t status)
{
	if (status != NFS3_OK) {
		fprintf(stderr, "tirpc_client: %s: unexpected status %s (%u)\n",
		    what, nfsstat_name(status), status);
		exit(3);
	}
}

static void check_call(CLIENT *clnt, enum clnt_stat st, const char *what)
{
	if (st != RPC_SUCCESS) {
		fprintf(stderr, "tirpc_client: %s: %s\n", what,
		    clnt_sperror(clnt, "call failed"));
		exit(2);
	}
}

/* ------------------------------------------------------------------ */
/* XDR for the RFC 1813 types we need                                  */

typedef struct {
	u_int len;
	char data[FHSIZE3];
} fh3;

typedef struct {
	uint32_t seconds, nseconds;
} nfstime3;

typedef struct {
	uint32_t type, mode, nlink, uid, gid;
	uint64_t size, used;
	uint32_t rdev_major, rdev_minor;
	uint64_t fsid, fileid;
	nfstime3 atime, mtime, ctime;
} fattr3;

typedef struct {
	bool_t present;
	fattr3 attr;
} post_op_attr;

typedef struct {
	bool_t present;
	uint64_t size;
	nfstime3 mtime, ctime;
} pre_op_attr;

typedef struct {
	pre_op_attr before;
	post_op_attr after;
} wcc_data;

typedef struct {
	fh3 dir;
	char *name;
} diropargs3;

/* void arguments/results (xdr_void's prototype does not fit xdrproc_t) */
static bool_t xdr_nothing(XDR *x, void *unused)
{
	(void)x;
	(void)unused;
	return TRUE;
}

static bool_t xdr_fh3(XDR *x, fh3 *fh)
{
	char *p = fh->data; /* fixed buffer: xdr_bytes never allocates */
	return xdr_bytes(x, &p, &fh->len, FHSIZE3);
}

static bool_t xdr_nfstime3(XDR *x, nfstime3 *t)
{
	return xdr_uint32_t(x, &t->seconds) && xdr_uint32_t(x, &t->nseconds);
}

static bool_t xdr_fattr3(XDR *x, fattr3 *a)
{
	return xdr_uint32_t(x, &a->type) && xdr_uint32_t(x, &a->mode) &&
	    xdr_uint32_t(x, &a->nlink) && xdr_uint32_t(x, &a->uid) &&
	    xdr_uint32_t(x, &a->gid) && xdr_uint64_t(x, &a->size) &&
	    xdr_uint64_t(x, &a->used) && xdr_uint32_t(x, &a->rdev_major) &&
	    xdr_uint32_t(x, &a->rdev_minor) && xdr_uint64_t(x, &a->fsid) &&
	    xdr_uint64_t(x, &a->fileid) && xdr_nfstime3(x, &a->atime) &&
	    xdr_nfstime3(x, &a->mtime) && xdr_nfstime3(x, &a->ctime);
}

static bool_t xdr_post_op_attr(XDR *x, post_op_attr *p)
{
	if (!xdr_bool(x, &p->present))
		return FALSE;
	return p->present ? xdr_fattr3(x, &p->attr) : TRUE;
}

static bool_t xdr_pre_op_attr(XDR *x, pre_op_attr *p)
{
	if (!xdr_bool(x, &p->present))
		return FALSE;
	if (!p->present)
		return TRUE;
	return xdr_uint64_t(x, &p->size) && xdr_nfstime3(x, &p->mtime) &&
	    xdr_nfstime3(x, &p->ctime);
}

static bool_t xdr_wcc_data(XDR *x, wcc_data *w)
{
	return xdr_pre_op_attr(x, &w->before) && xdr_post_op_attr(x, &w->after);
}

static bool_t xdr_diropargs3(XDR *x, diropargs3 *d)
{
	return xdr_fh3(x, &d->dir) && xdr_string(x, &d->name, ~0u);
}

/* sattr3 as sent by this client: optionally a mode, nothing else set. */
static bool_t xdr_sattr3_mode(XDR *x, uint32_t *mode)
{
	bool_t set_mode = TRUE, no = FALSE;
	uint32_t dont_change = 0; /* time_how: DONT_CHANGE */
	return xdr_bool(x, &set_mode) && xdr_uint32_t(x, mode) &&
	    xdr_bool(x, &no) /* uid */ && xdr_bool(x, &no) /* gid */ &&
	    xdr_bool(x, &no) /* size */ && xdr_uint32_t(x, &dont_change) &&
	    xdr_uint32_t(x, &dont_change);
}

/* GETATTR */
typedef struct {
	uint32_t status;
	fattr3 attr;
} getattr_res;

static bool_t xdr_getattr_res(XDR *x, getattr_res *r)
{
	if (!xdr_uint32_t(x, &r->status))
		return FALSE;
	return r->status == NFS3_OK ? xdr_fattr3(x, &r->attr) : TRUE;
}

/* LOOKUP */
typedef struct {
	uint32_t status;
	fh3 fh;
	post_op_attr obj, dir;
} lookup_res;

static bool_t xdr_lookup_res(XDR *x, lookup_res *r)
{
	if (!xdr_uint32_t(x, &r->status))
		return FALSE;
	if (r->status == NFS3_OK && !(xdr_fh3(x, &r->fh) &&
	    xdr_post_op_attr(x, &r->obj)))
		return FALSE;
	return xdr_post_op_attr(x, &r->dir);
}

/* CREATE (UNCHECKED/GUARDED only) and MKDIR share the result shape. */
typedef struct {
	diropargs3 where;
	uint32_t how; /* UNCHECKED or GUARDED; used by CREATE only */
	uint32_t mode;
} create_args;

typedef struct {
	uint32_t status;
	bool_t has_fh;
	fh3 fh;
	post_op_attr attr;
	wcc_data dir_wcc;
} create_res;

static bool_t xdr_create_args(XDR *x, create_args *a)
{
	return xdr_diropargs3(x, &a->where) && xdr_uint32_t(x, &a->how) &&
	    xdr_sattr3_mode(x, &a->mode);
}

static bool_t xdr_mkdir_args(XDR *x, create_args *a)
{
	return xdr_diropargs3(x, &a->where) && xdr_sattr3_mode(x, &a->mode);
}

static bool_t xdr_create_res(XDR *x, create_res *r)
{
	if (!xdr_uint32_t(x, &r->status))
		return FALSE;
	if (r->status == NFS3_OK) {
		if (!xdr_bool(x, &r->has_fh))
			return FALSE;
		if (r->has_fh && !xdr_fh3(x, &r->fh))
			return FALSE;
		if (!xdr_post_op_attr(x, &r->attr))
			return FALSE;
	}
	return xdr_wcc_data(x, &r->dir_wcc);
}

/* WRITE */
typedef struct {
	fh3 fh;
	uint64_t offset;
	uint32_t count, stable;
	char *data;
} write_args;

typedef struct {
	uint32_t status;
	wcc_data file_wcc;
	uint32_t count, committed;
	char verf[8];
} write_res;

static bool_t xdr_write_args(XDR *x, write_args *a)
{
	u_int len = a->count;
	return xdr_fh3(x, &a->fh) && xdr_uint64_t(x, &a->offset) &&
	    xdr_uint32_t(x, &a->count) && xdr_uint32_t(x, &a->stable) &&
	    xdr_bytes(x, &a->data, &len, ~0u);
}

static bool_t xdr_write_res(XDR *x, write_res *r)
{
	if (!xdr_uint32_t(x, &r->status) || !xdr_wcc_data(x, &r->file_wcc))
		return FALSE;
	if (r->status != NFS3_OK)
		return TRUE;
	return xdr_uint32_t(x, &r->count) && xdr_uint32_t(x, &r->committed) &&
	    xdr_opaque(x, r->verf, 8);
}

/* READ: the caller supplies the data buffer and its capacity. */
typedef struct {
	fh3 fh;
	uint64_t offset;
	uint32_t count;
} read_args;

typedef struct {
	uint32_t status;
	post_op_attr attr;
	uint32_t count;
	bool_t eof;
	char *data;
	u_int data_len, data_cap;
} read_res;

static bool_t xdr_read_args(XDR *x, read_args *a)
{
	return xdr_fh3(x, &a->fh) && xdr_uint64_t(x, &a->offset) &&
	    xdr_uint32_t(x, &a->count);
}

static bool_t xdr_read_res(XDR *x, read_res *r)
{
	if (!xdr_uint32_t(x, &r->status) || !xdr_post_op_attr(x, &r->attr))
		return FALSE;
	if (r->status != NFS3_OK)
		return TRUE;
	return xdr_uint32_t(x, &r->count) && xdr_bool(x, &r->eof) &&
	    xdr_bytes(x, &r->data, &r->data_len, r->data_cap);
}

/* RENAME */
typedef struct {
	diropargs3 from, to;
} rename_args;

typedef struct {
	uint32_t status;
	wcc_data from_wcc, to_wcc;
} rename_res;

static bool_t xdr_rename_args(XDR *x, rename_args *a)
{
	return xdr_diropargs3(x, &a->from) && xdr_diropargs3(x, &a->to);
}

static bool_t xdr_rename_res(XDR *x, rename_res *r)
{
	return xdr_uint32_t(x, &r->status) && xdr_wcc_data(x, &r->from_wcc) &&
	    xdr_wcc_data(x, &r->to_wcc);
}

/* MOUNT v3 MNT */
#define MAX_FLAVORS 16
typedef struct {
	uint32_t status;
	fh3 fh;
	u_int nflavors;
	uint32_t flavors[MAX_FLAVORS];
} mnt_res;

static bool_t xdr_dirpath(XDR *x, char **path)
{
	return xdr_string(x, path, MNTPATHLEN);
}

static bool_t xdr_mnt_res(XDR *x, mnt_res *r)
{
	u_int i, n;
	if (!xdr_uint32_t(x, &r->status))
		return FALSE;
	if (r->status != 0)
		return TRUE;
	if (!xdr_fh3(x, &r->fh) || !xdr_u_int(x, &n))
		return FALSE;
	r->nflavors = 0;
	for (i = 0; i < n; i++) {
		uint32_t f;
		if (!xdr_uint32_t(x, &f))
			return FALSE;
		if (r->nflavors < MAX_FLAVORS)
			r->flavors[r->nflavors++] = f;
	}
	return TRUE;
}

/* MOUNT v3 EXPORT: the optional-data linked lists are walked in place. */
typedef struct export_entry {
	char *dir;
	struct export_entry *next;
} export_entry;

static bool_t xdr_export_list(XDR *x, export_entry **head)
{
	export_entry **tail = head;
	bool_t more;

	for (;;) {
		if (!xdr_bool(x, &more))
			return FALSE;
		if (!more)
			return TRUE;
		export_entry *e = calloc(1, sizeof *e);
		if (e == NULL || !xdr_dirpath(x, &e->dir))
			return FALSE;
		/* ex_groups: a list of names we read and discard */
		bool_t more_groups;
		for (;;) {
			char *group = NULL;
			if (!xdr_bool(x, &more_groups))
				return FALSE;
			if (!more_groups)
				break;
			if (!xdr_string(x, &group, ~0u))
				return FALSE;
			free(group);
		}
		*tail = e;
		tail = &e->next;
	}
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static CLIENT *make_client(const char *host, int port, int tcp,
    u_long prog, u_long vers, u_int sendsz, u_int recvsz)
{
	struct sockaddr_in sin;
	int sock = RPC_ANYSOCK;
	CLIENT *clnt;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port); /* non-zero: no portmapper query */
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die(1, "HOST must be a numeric IPv4 address, got '%s'", host);
	if (tcp) {
		clnt = clnttcp_create(&sin, prog, vers, &sock, sendsz, recvsz);
	} else {
		struct timeval retry = { 1, 0 };
		clnt = clntudp_bufcreate(&sin, prog, vers, retry, &sock,
		    sendsz, recvsz);
	}
	if (clnt == NULL)
		die(2, "%s", clnt_spcreateerror("cannot create client"));
	return clnt;
}

static void use_auth_sys(CLIENT *clnt)
{
	AUTH *auth = authunix_create_default();
	if (auth == NULL)
		die(2, "%s", "authunix_create_default failed");
	auth_destroy(clnt->cl_auth);
	clnt->cl_auth = auth;
}

static void parse_fh(const char *hex, fh3 *fh)
{
	size_t n = strlen(hex);
	if (n == 0 || n % 2 != 0 || n / 2 > FHSIZE3)
		die(1, "bad file handle hex '%s'", hex);
	fh->len = (u_int)(n / 2);
	for (size_t i = 0; i < fh->len; i++) {
		unsigned int byte;
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			die(1, "bad file handle hex '%s'", hex);
		fh->data[i] = (char)byte;
	}
}

static void print_fh(const char *key, const fh3 *fh)
{
	printf("%s=", key);
	for (u_int i = 0; i < fh->len; i++)
		printf("%02x", (unsigned char)fh->data[i]);
	printf("\n");
}

static int fh_equal(const fh3 *a, const fh3 *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (*s == '\0' || *end != '\0')
		die(1, "bad number for %s", what);
	return (uint64_t)v;
}

static unsigned char pattern_byte(uint64_t offset)
{
	return (unsigned char)((offset * 7 + 3) & 0xff);
}

static void fill_pattern(char *buf, uint64_t offset, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)pattern_byte(offset + i);
}

static uint64_t fnv1a64(const char *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)buf[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void nfs_getattr(CLIENT *clnt, fh3 *fh, fattr3 *out)
{
	getattr_res res;
	memset(&res, 0, sizeof res);
	check_call(clnt, clnt_call(clnt, NFSPROC3_GETATTR,
	    (xdrproc_t)xdr_fh3, (caddr_t)fh, (xdrproc_t)xdr_getattr_res,
	    (caddr_t)&res, call_timeout), "GETATTR");
	expect_nfs_ok("GETATTR", res.status);
	*out = res.attr;
}

static uint32_t nfs_create(CLIENT *clnt, fh3 *dir, char *name, uint32_t how,
    create_res *res)
{
	create_args args = { { *dir, name }, how, 0644 };
	memset(res, 0, sizeof *res);
	check_call(clnt, clnt_call(clnt, NFSPROC3_CREATE,
	    (xdrproc_t)xdr_create_args, (caddr_t)&args,
	    (xdrproc_t)xdr_create_res, (caddr_t)res, call_timeout), "CREATE");
	return res->status;
}

static void nfs_write(CLIENT *clnt, fh3 *fh, uint64_t offset, char *data,
    uint32_t count, write_res *res)
{
	write_args args = { *fh, offset, count, FILE_SYNC, data };
	memset(res, 0, sizeof *res);
	check_call(clnt, clnt_call(clnt, NFSPROC3_WRITE,
	    (xdrproc_t)xdr_write_args, (caddr_t)&args,
	    (xdrproc_t)xdr_write_res, (caddr_t)res, call_timeout), "WRITE");
	expect_nfs_ok("WRITE", res->status);
	if (res->count != count) {
		fprintf(stderr, "tirpc_client: WRITE: short write %u of %u\n",
		    res->count, count);
		exit(3);
	}
}

static void nfs_read(CLIENT *clnt, fh3 *fh, uint64_t offset, uint32_t count,
    char *buf, read_res *res)
{
	read_args args = { *fh, offset, count };
	memset(res, 0, sizeof *res);
	res->data = buf;
	res->data_cap = count;
	check_call(clnt, clnt_call(clnt, NFSPROC3_READ,
	    (xdrproc_t)xdr_read_args, (caddr_t)&args,
	    (xdrproc_t)xdr_read_res, (caddr_t)res, call_timeout), "READ");
	expect_nfs_ok("READ", res->status);
	if (res->count != res->data_len) {
		fprintf(stderr, "tirpc_client: READ: count %u but %u data bytes\n",
		    res->count, res->data_len);
		exit(3);
	}
}

/*
 * Make the next call on clnt use exactly xid `want`.
 *
 * CLSET_XID is meant to do that, but libtirpc's stream client stores the
 * xid in network order and decrements that stored word as a host integer
 * before each call, so on little-endian hosts CLSET_XID(v) does not yield
 * v. probe_xid_mapping() learns which behaviour this libtirpc has by
 * sending one NULL call with a known xid and reading back the xid used.
 */
static int xid_needs_stream_fixup = -1;

static uint32_t stream_fixup_sent(uint32_t v)
{
	uint32_t word = htonl(v + 1); /* what CLSET_XID stores */
	word -= 1;                   /* what the call does to it */
	return ntohl(word);
}

static void probe_xid_mapping(CLIENT *clnt, uint32_t probe)
{
	uint32_t used = 0;
	if (!clnt_control(clnt, CLSET_XID, (char *)&probe))
		die(2, "%s", "CLSET_XID is not supported");
	check_call(clnt, clnt_call(clnt, 0, (xdrproc_t)xdr_nothing, NULL,
	    (xdrproc_t)xdr_nothing, NULL, call_timeout), "NULL (xid probe)");
	if (!clnt_control(clnt, CLGET_XID, (char *)&used))
		die(2, "%s", "CLGET_XID is not supported");
	if (used == probe)
		xid_needs_stream_fixup = 0;
	else if (used == stream_fixup_sent(probe))
		xid_needs_stream_fixup = 1;
	else
		die(2, "%s", "cannot work out how CLSET_XID maps to the sent xid");
}

static void set_next_xid(CLIENT *clnt, uint32_t want)
{
	uint32_t v = want;
	if (xid_needs_stream_fixup)
		v = ntohl(htonl(want) + 1) - 1; /* inverse of stream_fixup_sent */
	if (!clnt_control(clnt, CLSET_XID, (char *)&v))
		die(2, "%s", "CLSET_XID failed");
}

static uint32_t last_xid(CLIENT *clnt)
{
	uint32_t xid = 0;
	if (!clnt_control(clnt, CLGET_XID, (char *)&xid))
		die(2, "%s", "CLGET_XID failed");
	return xid;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

typedef struct {
	const char *host;
	int port;
	int tcp;
} target;

static CLIENT *nfs_client(const target *t, u_int sendsz)
{
	CLIENT *clnt = make_client(t->host, t->port, t->tcp, NFS_PROG, NFS_V3,
	    sendsz, t->tcp ? 0 : 65000);
	use_auth_sys(clnt);
	return clnt;
}

static int cmd_null(const target *t, char **argv)
{
	u_long prog = (u_long)parse_u64(argv[0], "PROG");
	u_long vers = (u_long)parse_u64(argv[1], "VERS");
	CLIENT *clnt = make_client(t->host, t->port, t->tcp, prog, vers, 0, 0);
	check_call(clnt, clnt_call(clnt, 0, (xdrproc_t)xdr_nothing, NULL,
	    (xdrproc_t)xdr_nothing, NULL, call_timeout), "NULL");
	printf("ok\n");
	clnt_destroy(clnt);
	return 0;
}

static int cmd_mnt(const target *t, char **argv)
{
	CLIENT *clnt = make_client(t->host, t->port, t->tcp, MOUNT_PROG,
	    MOUNT_V3, 0, 0);
	char *path = argv[0];
	mnt_res res;

	use_auth_sys(clnt);
	memset(&res, 0, sizeof res);
	check_call(clnt, clnt_call(clnt, MOUNTPROC3_MNT, (xdrproc_t)xdr_dirpath,
	    (caddr_t)&path, (xdrproc_t)xdr_mnt_res, (caddr_t)&res,
	    call_timeout), "MNT");
	if (res.status != 0) {
		fprintf(stderr, "tirpc_client: MNT: mountstat3 %u\n", res.status);
		return 3;
	}
	print_fh("fh", &res.fh);
	printf("flavors=");
	for (u_int i = 0; i < res.nflavors; i++)
		printf("%s%u", i ? "," : "", res.flavors[i]);
	printf("\n");
	clnt_destroy(clnt);
	return 0;
}

static int cmd_export(const target *t, char **argv)
{
	CLIENT *clnt = make_client(t->host, t->port, t->tcp, MOUNT_PROG,
	    MOUNT_V3, 0, 0);
	export_entry *list = NULL;

	(void)argv;
	use_auth_sys(clnt);
	check_call(clnt, clnt_call(clnt, MOUNTPROC3_EXPORT, (xdrproc_t)xdr_nothing,
	    NULL, (xdrproc_t)xdr_export_list, (caddr_t)&list, call_timeout),
	    "EXPORT");
	for (export_entry *e = list; e != NULL; e = e->next)
		printf("export=%s\n", e->dir);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_getattr(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	fh3 fh;
	fattr3 a;

	parse_fh(argv[0], &fh);
	nfs_getattr(clnt, &fh, &a);
	printf("type=%u mode=%04o nlink=%u size=%llu fileid=%llu uid=%u gid=%u\n",
	    a.type, a.mode, a.nlink, (unsigned long long)a.size,
	    (unsigned long long)a.fileid, a.uid, a.gid);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_lookup(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	diropargs3 args;
	lookup_res res;

	parse_fh(argv[0], &args.dir);
	args.name = argv[1];
	memset(&res, 0, sizeof res);
	check_call(clnt, clnt_call(clnt, NFSPROC3_LOOKUP,
	    (xdrproc_t)xdr_diropargs3, (caddr_t)&args,
	    (xdrproc_t)xdr_lookup_res, (caddr_t)&res, call_timeout), "LOOKUP");
	expect_nfs_ok("LOOKUP", res.status);
	print_fh("fh", &res.fh);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_create(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	fh3 dir;
	create_res res;

	parse_fh(argv[0], &dir);
	expect_nfs_ok("CREATE", nfs_create(clnt, &dir, argv[1], UNCHECKED, &res));
	if (!res.has_fh)
		die(3, "%s", "CREATE: reply carries no file handle");
	print_fh("fh", &res.fh);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_mkdir(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	create_args args;
	create_res res;

	parse_fh(argv[0], &args.where.dir);
	args.where.name = argv[1];
	args.how = 0;
	args.mode = 0755;
	memset(&res, 0, sizeof res);
	check_call(clnt, clnt_call(clnt, NFSPROC3_MKDIR,
	    (xdrproc_t)xdr_mkdir_args, (caddr_t)&args,
	    (xdrproc_t)xdr_create_res, (caddr_t)&res, call_timeout), "MKDIR");
	expect_nfs_ok("MKDIR", res.status);
	if (!res.has_fh)
		die(3, "%s", "MKDIR: reply carries no file handle");
	print_fh("fh", &res.fh);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_write(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	fh3 fh;
	uint64_t offset = parse_u64(argv[1], "OFFSET");
	uint32_t count = (uint32_t)parse_u64(argv[2], "COUNT");
	char *buf = malloc(count ? count : 1);
	write_res res;

	parse_fh(argv[0], &fh);
	fill_pattern(buf, offset, count);
	nfs_write(clnt, &fh, offset, buf, count, &res);
	printf("count=%u committed=%u\n", res.count, res.committed);
	free(buf);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_read(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	fh3 fh;
	uint64_t offset = parse_u64(argv[1], "OFFSET");
	uint32_t count = (uint32_t)parse_u64(argv[2], "COUNT");
	char *buf = malloc(count ? count : 1);
	read_res res;

	parse_fh(argv[0], &fh);
	nfs_read(clnt, &fh, offset, count, buf, &res);
	printf("count=%u eof=%d fnv1a64=%016llx\n", res.count, res.eof ? 1 : 0,
	    (unsigned long long)fnv1a64(buf, res.count));
	free(buf);
	clnt_destroy(clnt);
	return 0;
}

static int cmd_rename(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	rename_args args;
	rename_res res;

	parse_fh(argv[0], &args.from.dir);
	args.from.name = argv[1];
	parse_fh(argv[2], &args.to.dir);
	args.to.name = argv[3];
	memset(&res, 0, sizeof res);
	check_call(clnt, clnt_call(clnt, NFSPROC3_RENAME,
	    (xdrproc_t)xdr_rename_args, (caddr_t)&args,
	    (xdrproc_t)xdr_rename_res, (caddr_t)&res, call_timeout), "RENAME");
	expect_nfs_ok("RENAME", res.status);
	printf("ok\n");
	clnt_destroy(clnt);
	return 0;
}

/*
 * GUARDED CREATE sent twice with one xid: the duplicate request cache must
 * replay the first reply (OK, same handle) instead of answering EXIST. A
 * third CREATE with a fresh xid must then fail with NFS3ERR_EXIST.
 */
static int cmd_create_retransmit(const target *t, char **argv)
{
	CLIENT *clnt = nfs_client(t, 0);
	fh3 dir;
	create_res first, second, third;
	uint32_t seed = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	uint32_t xid;

	parse_fh(argv[0], &dir);
	probe_xid_mapping(clnt, seed ^ 0x5a5a0000u);
	printf("xid_mapping=%s\n", xid_needs_stream_fixup ? "stream-fixup" : "plain");

	set_next_xid(clnt, seed);
	nfs_create(clnt, &dir, argv[1], GUARDED, &first);
	xid = last_xid(clnt);
	printf("xid=%08x\n", xid);
	printf("first=%s\n", nfsstat_name(first.status));
	expect_nfs_ok("first CREATE", first.status);
	if (!first.has_fh)
		die(3, "%s", "first CREATE: reply carries no file handle");
	print_fh("first_fh", &first.fh);

	set_next_xid(clnt, xid);
	nfs_create(clnt, &dir, argv[1], GUARDED, &second);
	if (last_xid(clnt) != xid)
		die(2, "%s", "second CREATE did not reuse the first xid");
	printf("second=%s\n", nfsstat_name(second.status));
	expect_nfs_ok("retransmitted CREATE (same xid)", second.status);
	if (!second.has_fh || !fh_equal(&first.fh, &second.fh))
		die(3, "%s", "retransmitted CREATE returned a different handle");
	print_fh("second_fh", &second.fh);

	set_next_xid(clnt, xid + 0x01000001u);
	nfs_create(clnt, &dir, argv[1], GUARDED, &third);
	if (last_xid(clnt) == xid)
		die(2, "%s", "third CREATE reused the first xid");
	printf("third=%s\n", nfsstat_name(third.status));
	if (third.status != NFS3ERR_EXIST) {
		fprintf(stderr, "tirpc_client: third CREATE (new xid): expected "
		    "NFS3ERR_EXIST, got %s\n", nfsstat_name(third.status));
		return 3;
	}
	clnt_destroy(clnt);
	return 0;
}

/*
 * One WRITE of SIZE bytes through a TCP client whose record-marking send
 * buffer is SMALL_SENDSZ bytes, so the call goes out as many fragments;
 * then read the file back in chunks and compare byte for byte.
 */
static int cmd_write_multifrag(const target *t, char **argv)
{
	fh3 dir;
	uint32_t size = (uint32_t)parse_u64(argv[2], "SIZE");
	char *data = malloc(size ? size : 1);
	char *back = malloc(READ_CHUNK);
	create_res created;
	write_res wres;

	if (!t->tcp)
		die(1, "%s", "write-multifrag needs tcp");
	parse_fh(argv[0], &dir);

	CLIENT *plain = nfs_client(t, 0);
	expect_nfs_ok("CREATE", nfs_create(plain, &dir, argv[1], UNCHECKED,
	    &created));
	if (!created.has_fh)
		die(3, "%s", "CREATE: reply carries no file handle");

	/* Each fragment carries at most SMALL_SENDSZ - 4 bytes of the record. */
	CLIENT *small = nfs_client(t, SMALL_SENDSZ);
	fill_pattern(data, 0, size);
	nfs_write(small, &created.fh, 0, data, size, &wres);
	printf("frags>=%u\n", size / (SMALL_SENDSZ - 4) + 1);
	clnt_destroy(small);

	uint64_t offset = 0;
	while (offset < size) {
		uint32_t want = size - offset < READ_CHUNK ?
		    (uint32_t)(size - offset) : READ_CHUNK;
		read_res rres;
		nfs_read(plain, &created.fh, offset, want, back, &rres);
		if (rres.count == 0) {
			fprintf(stderr, "tirpc_client: READ: no data at offset "
			    "%llu of %u\n", (unsigned long long)offset, size);
			return 3;
		}
		if (memcmp(back, data + offset, rres.count) != 0) {
			fprintf(stderr, "tirpc_client: data differs in the %u "
			    "bytes at offset %llu\n", rres.count,
			    (unsigned long long)offset);
			return 3;
		}
		offset += rres.count;
	}
	fattr3 attr;
	nfs_getattr(plain, &created.fh, &attr);
	if (attr.size != size) {
		fprintf(stderr, "tirpc_client: size is %llu, expected %u\n",
		    (unsigned long long)attr.size, size);
		return 3;
	}
	printf("ok\n");
	free(data);
	free(back);
	clnt_destroy(plain);
	return 0;
}

/* ------------------------------------------------------------------ */

typedef struct {
	const char *name;
	int nargs;
	int (*run)(const target *, char **);
	const char *usage;
} command;

static const command commands[] = {
	{ "null", 2, cmd_null, "PROG VERS" },
	{ "mnt", 1, cmd_mnt, "PATH" },
	{ "export", 0, cmd_export, "" },
	{ "getattr", 1, cmd_getattr, "FH" },
	{ "lookup", 2, cmd_lookup, "DIRFH NAME" },
	{ "create", 2, cmd_create, "DIRFH NAME" },
	{ "mkdir", 2, cmd_mkdir, "DIRFH NAME" },
	{ "write", 3, cmd_write, "FH OFFSET COUNT" },
	{ "read", 3, cmd_read, "FH OFFSET COUNT" },
	{ "rename", 4, cmd_rename, "FROMDIRFH NAME TODIRFH NAME2" },
	{ "create-retransmit", 2, cmd_create_retransmit, "DIRFH NAME" },
	{ "write-multifrag", 3, cmd_write_multifrag, "DIRFH NAME SIZE" },
};

static void usage(void)
{
	fprintf(stderr, "usage: tirpc_client HOST PORT tcp|udp CMD ARGS...\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(stderr, "  %s %s\n", commands[i].name, commands[i].usage);
	exit(1);
}

int main(int argc, char **argv)
{
	target t;

	if (argc < 5)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	t.host = argv[1];
	t.port = (int)parse_u64(argv[2], "PORT");
	if (t.port <= 0 || t.port > 65535)
		die(1, "bad port '%s'", argv[2]);
	if (strcmp(argv[3], "tcp") == 0)
		t.tcp = 1;
	else if (strcmp(argv[3], "udp") == 0)
		t.tcp = 0;
	else
		usage();

	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[4], commands[i].name) != 0)
			continue;
		if (argc - 5 != commands[i].nargs)
			usage();
		return commands[i].run(&t, argv + 5);
	}
	usage();
	return 1;
}

/*
 * zbench: libzmq's side of the zmtp cross-library benchmarks (bench/zmtp/run.sh builds it with
 * gcc against libzmq3-dev; nothing in the Go build or the tests uses it).
 *
 * Both ends run in one process, each on its own thread with its own zmq context (one I/O thread
 * each, as two processes would have), over tcp loopback, so the numbers compare with the Go
 * benchmarks in zmtp/crossbench_test.go, which also run both ends in one process.
 *
 *   zbench thr dealer-router SIZE COUNT   one-way: DEALER sends COUNT messages of SIZE bytes,
 *                                         the bound ROUTER receives them
 *   zbench thr pub-sub SIZE COUNT         one-way: PUB (bound) to SUB, HWM lifted so nothing drops
 *   zbench lat req-rep SIZE COUNT         round trips REQ -> REP -> REQ, each one timed
 *
 * A sixth argument "curve" puts CURVE on the connection (dealer-router and req-rep): the bound
 * socket is the CURVE server, keys made with zmq_curve_keypair at start.
 *
 * Output, one line: "RESULT key=value ...". thr: msgs, secs, msg_s, mb_s (timed at the receiver,
 * first message to last). lat: p50_ns, p99_ns, mean_ns.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static const char *mode, *pattern;
static size_t size;
static long count;
static char endpoint[256];
static int curve;
static char srv_pub[41], srv_sec[41], cli_pub[41], cli_sec[41];

static void die(const char *what) {
    fprintf(stderr, "zbench: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_int(void *s, int opt, int v) {
    if (zmq_setsockopt(s, opt, &v, sizeof v) != 0) die("setsockopt");
}

static void set_str(void *s, int opt, const char *v) {
    if (zmq_setsockopt(s, opt, v, strlen(v)) != 0) die("setsockopt");
}

/* CURVE roles, when the run asked for CURVE. */
static void curve_server(void *s) {
    if (!curve) return;
    set_int(s, ZMQ_CURVE_SERVER, 1);
    set_str(s, ZMQ_CURVE_SECRETKEY, srv_sec);
}

static void curve_client(void *s) {
    if (!curve) return;
    set_str(s, ZMQ_CURVE_SERVERKEY, srv_pub);
    set_str(s, ZMQ_CURVE_PUBLICKEY, cli_pub);
    set_str(s, ZMQ_CURVE_SECRETKEY, cli_sec);
}

static void bind_any(void *s) {
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) die("bind");
    size_t n = sizeof endpoint;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &n) != 0) die("last endpoint");
}

/* The DEALER side of the dealer-router run: connects and sends COUNT messages. */
static void *sender(void *arg) {
    (void)arg;
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    set_int(s, ZMQ_LINGER, -1);
    curve_client(s);
    if (zmq_connect(s, endpoint) != 0) die("connect");
    char *buf = calloc(1, size);
    for (long i = 0; i < count; i++) {
        if (zmq_send(s, buf, size, 0) != (int)size) die("send");
    }
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void thr_dealer_router(void) {
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    set_int(r, ZMQ_LINGER, 0);
    curve_server(r);
    bind_any(r);
    pthread_t th;
    pthread_create(&th, NULL, sender, NULL);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    uint64_t start = 0;
    for (long i = 0; i < count; i++) {
        if (zmq_msg_recv(&id, r, 0) < 0) die("recv id");
        if (zmq_msg_recv(&body, r, 0) < 0) die("recv body");
        if (i == 0) start = now_ns();
    }
    uint64_t el = now_ns() - start;
    pthread_join(th, NULL);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    zmq_close(r);
    zmq_ctx_term(ctx);
    double secs = el / 1e9;
    printf("RESULT msgs=%ld secs=%.6f msg_s=%.0f mb_s=%.2f\n", count - 1, secs, (count - 1) / secs,
           (count - 1) * (double)size / secs / 1e6);
}

struct pub_arg {
    void *p;
    char *buf;
};
static void *send_all(void *arg);

/* pub-sub: the PUB binds on the main thread's context, the SUB connects; a probe topic ("P")
 * is published until the SUB sees it, then COUNT messages under topic "M" (a 1-byte prefix
 * inside the SIZE-byte body) follow. */
static void thr_pub_sub(void) {
    void *pctx = zmq_ctx_new(), *sctx = zmq_ctx_new();
    void *p = zmq_socket(pctx, ZMQ_PUB);
    set_int(p, ZMQ_LINGER, -1);
    set_int(p, ZMQ_SNDHWM, 0);
    bind_any(p);
    void *s = zmq_socket(sctx, ZMQ_SUB);
    set_int(s, ZMQ_LINGER, 0);
    set_int(s, ZMQ_RCVHWM, 0);
    if (zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) != 0) die("subscribe");
    if (zmq_connect(s, endpoint) != 0) die("connect");
    char *buf = calloc(1, size);
    buf[0] = 'P';
    set_int(s, ZMQ_RCVTIMEO, 10);
    for (int i = 0;; i++) {
        if (i > 1000) { fprintf(stderr, "zbench: subscriber never joined\n"); exit(1); }
        zmq_send(p, buf, size, 0);
        if (zmq_recv(s, buf, size, 0) >= 0) break;
    }
    /* Drain probes still in flight, then send the measured stream from a thread. */
    set_int(s, ZMQ_RCVTIMEO, 50);
    while (zmq_recv(s, buf, size, 0) >= 0) {
    }
    set_int(s, ZMQ_RCVTIMEO, -1);
    pthread_t th;
    struct pub_arg a = {p, buf};
    pthread_create(&th, NULL, send_all, &a);
    zmq_msg_t m;
    zmq_msg_init(&m);
    uint64_t start = 0;
    for (long i = 0; i < count; i++) {
        if (zmq_msg_recv(&m, s, 0) < 0) die("recv");
        if (i == 0) start = now_ns();
    }
    uint64_t el = now_ns() - start;
    pthread_join(th, NULL);
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_close(p);
    zmq_ctx_term(sctx);
    zmq_ctx_term(pctx);
    free(buf);
    double secs = el / 1e9;
    printf("RESULT msgs=%ld secs=%.6f msg_s=%.0f mb_s=%.2f\n", count - 1, secs, (count - 1) / secs,
           (count - 1) * (double)size / secs / 1e6);
}

static void *send_all(void *arg) {
    struct pub_arg *a = arg;
    a->buf[0] = 'M';
    for (long i = 0; i < count; i++) {
        if (zmq_send(a->p, a->buf, size, 0) != (int)size) die("send");
    }
    return NULL;
}

static void *echo(void *arg) {
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REP);
    set_int(s, ZMQ_LINGER, 0);
    curve_client(s);
    if (zmq_connect(s, endpoint) != 0) die("connect");
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < count + 100; i++) {
        if (zmq_msg_recv(&m, s, 0) < 0) die("rep recv");
        if (zmq_msg_send(&m, s, 0) < 0) die("rep send");
    }
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    (void)arg;
    return NULL;
}

static void lat_req_rep(void) {
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    set_int(s, ZMQ_LINGER, 0);
    curve_server(s);
    bind_any(s);
    pthread_t th;
    pthread_create(&th, NULL, echo, NULL);
    char *buf = calloc(1, size);
    uint64_t *rtt = calloc(count, sizeof *rtt);
    for (long i = 0; i < count + 100; i++) { /* the first 100 warm up */
        uint64_t t0 = now_ns();
        if (zmq_send(s, buf, size, 0) != (int)size) die("req send");
        if (zmq_recv(s, buf, size, 0) != (int)size) die("req recv");
        if (i >= 100) rtt[i - 100] = now_ns() - t0;
    }
    pthread_join(th, NULL);
    qsort(rtt, count, sizeof *rtt, cmp_u64);
    double sum = 0;
    for (long i = 0; i < count; i++) sum += rtt[i];
    printf("RESULT p50_ns=%llu p99_ns=%llu mean_ns=%.0f\n", (unsigned long long)rtt[count / 2],
           (unsigned long long)rtt[count * 99 / 100], sum / count);
    free(rtt);
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

int main(int argc, char **argv) {
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "curve") == 0)) {
        fprintf(stderr, "usage: zbench thr|lat dealer-router|pub-sub|req-rep SIZE COUNT [curve]\n");
        return 2;
    }
    if (argc == 6) {
        curve = 1;
        if (zmq_curve_keypair(srv_pub, srv_sec) != 0 || zmq_curve_keypair(cli_pub, cli_sec) != 0)
            die("curve keypair");
    }
    mode = argv[1];
    pattern = argv[2];
    size = (size_t)atol(argv[3]);
    count = atol(argv[4]);
    if (size < 1 || count < 2) {
        fprintf(stderr, "zbench: SIZE >= 1 and COUNT >= 2\n");
        return 2;
    }
    if (strcmp(mode, "thr") == 0 && strcmp(pattern, "dealer-router") == 0) thr_dealer_router();
    else if (strcmp(mode, "thr") == 0 && strcmp(pattern, "pub-sub") == 0) thr_pub_sub();
    else if (strcmp(mode, "lat") == 0 && strcmp(pattern, "req-rep") == 0) lat_req_rep();
    else {
        fprintf(stderr, "zbench: unknown %s %s\n", mode, pattern);
        return 2;
    }
    return 0;
}

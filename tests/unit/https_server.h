/*
 * https_server.h - a small HTTPS server for the OAuth2 client tests: a
 * thread of the test process that accepts on 127.0.0.1 with OpenSSL,
 * reads one request per connection (its body is kept), and answers with
 * the next of up to four raw HTTP answers, or never (silent).  Static
 * functions, included by one test; the includer defines _GNU_SOURCE
 * (asprintf, strcasestr) before any header.
 */
#ifndef MAILSTOW_TEST_HTTPS_SERVER_H
#define MAILSTOW_TEST_HTTPS_SERVER_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>

struct hsrv {
	pthread_t	 th;
	pthread_mutex_t	 mu;
	SSL_CTX		*ctx;
	int		 lfd;
	int		 stop[2];
	uint16_t	 port;
	const char	*resp[4];	/* raw HTTP answers, in turn */
	int		 n_resp;
	bool		 silent;	/* read the request, never answer */
	int		 n_reqs;
	char		 body[4][4096];	/* each request's body */
};


static char *
h_read_request(SSL *ssl, char *body, size_t bodylen)
{
	static char buf[16384];
	size_t len = 0, clen = 0;
	char *end, *cl;
	int n;

	for (;;) {
		if (len + 1 >= sizeof buf)
			return NULL;
		if ((n = SSL_read(ssl, buf + len, (int)(sizeof buf - len - 1)))
		    <= 0)
			return NULL;
		len += (size_t)n;
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		if ((cl = strcasestr(buf, "Content-Length:")) != NULL)
			clen = strtoul(cl + 15, NULL, 10);
		if (len >= (size_t)(end + 4 - buf) + clen)
			break;
	}
	snprintf(body, bodylen, "%s", end + 4);
	return buf;
}

static void
h_conn(struct hsrv *s, int fd)
{
	char body[4096];
	const char *resp;
	struct pollfd pfd = { s->stop[0], POLLIN, 0 };
	SSL *ssl;
	int i;

	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1 ||
	    h_read_request(ssl, body, sizeof body) == NULL)
		goto out;
	pthread_mutex_lock(&s->mu);
	i = s->n_reqs++;
	if (i < 4)
		snprintf(s->body[i], sizeof s->body[i], "%s", body);
	resp = s->resp[i < s->n_resp ? i : s->n_resp - 1];
	pthread_mutex_unlock(&s->mu);
	if (s->silent) {
		poll(&pfd, 1, 5000);
		goto out;
	}
	SSL_write(ssl, resp, (int)strlen(resp));
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
}

static void *
h_main(void *arg)
{
	struct hsrv *s = arg;
	struct pollfd pfd[2] = { { s->lfd, POLLIN, 0 },
	    { s->stop[0], POLLIN, 0 } };
	struct timeval tv = { 5, 0 };
	int fd;

	for (;;) {
		if (poll(pfd, 2, 10000) <= 0 || pfd[1].revents != 0)
			break;
		if ((fd = accept(s->lfd, NULL, NULL)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		h_conn(s, fd);
	}
	return NULL;
}

/* Listen on 127.0.0.1 with this certificate and key, serve in a thread. */
static void
h_start(struct hsrv *s, const char *cert, const char *key)
{
	struct sockaddr_in sa = { 0 };
	socklen_t salen = sizeof sa;

	assert_non_null(s->ctx = SSL_CTX_new(TLS_server_method()));
	assert_int_equal(SSL_CTX_use_certificate_chain_file(s->ctx, cert),
	    1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(s->ctx, key,
	    SSL_FILETYPE_PEM), 1);
	assert_true((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &salen),
	    0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pipe(s->stop), 0);
	pthread_mutex_init(&s->mu, NULL);
	assert_int_equal(pthread_create(&s->th, NULL, h_main, s), 0);
}

static void
h_stop(struct hsrv *s)
{
	assert_int_equal(write(s->stop[1], "x", 1), 1);
	pthread_join(s->th, NULL);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->mu);
}

static int
h_reqs(struct hsrv *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n_reqs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* A raw HTTP answer; the caller frees it. */
static char *
h_answer(int status, const char *extra, const char *body)
{
	char *s;

	assert_true(asprintf(&s, "HTTP/1.1 %d X\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "%s\r\n%s", status, strlen(body), extra, body) > 0);
	return s;
}

#endif

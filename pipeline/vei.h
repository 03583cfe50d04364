/* vei.h: the C API of the original libvei ("Virtual Network Event Injector"), on veipipe.
 *
 * A drop-in for programs written against libvei: the same function names and signatures, the
 * same event constants and error codes with the same values (see the end of this comment for
 * their source). Usable from C (C89 or later) and C++.
 *
 *   FILE* bg = fopen("background.pcap", "r");
 *   FILE* out = fopen("output.pcap", "wb");
 *   if (initialize_vei_library(bg, out) != 0) ...;   // thread 1
 *   ... start thread 2, which calls inject_event(VEI_PING) whenever it likes ...
 *   start_vei_transcription();                         // thread 1: blocks until bg ends
 *   vei_finish();                                      // closes bg and out
 *
 * Semantics (veipipe's; docs/architecture.md, "Ordering" and "Events"):
 * - The output is a classic pcap with the background's link type: every background record, in
 *   order and unchanged, with the injected packets woven in. An injected event starts at the
 *   output timeline's "now": the time of the last packet written, as the original stamped its
 *   injected packets with the last background packet's time; its conversation keeps its own
 *   spacing from there. Packets injected before start_vei_transcription() are kept and written at
 *   the start, stamped with the background's first packet time.
 * - Timing: like the original, which slept to replay the background at its recorded pace, the
 *   transcription is paced in real time by default, so a thread that injects while it runs sees
 *   its events land among the right background packets. The environment variable VEI_SPEED,
 *   read by initialize_vei_library(), selects another speed: `realtime` (the default),
 *   `topspeed` (as fast as the files allow: tests, batch jobs) or a factor such as `4x`, `0.5x`
 *   (0.01x..1000x).
 * - Each event is the conversation of veipipe's generator stage for it (http, dns, synscan...,
 *   listed below) between two hosts the background shows, so that it fits in: its server is
 *   the address receiving the most TCP SYNs in the background's first 100,000 packets (among
 *   equals the busiest; without SYNs, the most frequent destination), its client the most frequent source other than the server
 *   (broadcast and multicast addresses never); IPv4 hosts, else IPv6 ones. A background that cannot be read twice (a
 *   pipe, a FIFO, stdin) has unknown hosts: the events go from 10.99.0.1 to 10.99.0.2. Event n
 *   (from 0 since the initialisation) is seeded with n and, over TCP, comes from client port
 *   49152 + n mod 16384, so that every conversation is its own stream.
 * - All functions may be called from any thread, in any order; a call that makes no sense in the
 *   library's current state returns an error code (negated) and changes nothing.
 * - The library can be initialised again after vei_finish().
 *
 * Source of the constants: the original libvei header and implementation (vei.h / vei.c,
 * "Virtual Network Event Injector Service (VEI)", Michael Locasto, 2010-2011, GPLv2), found in the
 * public code index. Only the interface (names and values) is reproduced here; no code or text.
 */
#ifndef VEIPIPE_PIPELINE_VEI_H
#define VEIPIPE_PIPELINE_VEI_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. The functions return them negated: -LIB_NOT_INITIALIZED, etc. */
#define LIB_NOT_INITIALIZED 98   /* initialize_vei_library() has not succeeded (or vei_finish() ran) */
#define LIB_NOT_TRANSCRIBING 99  /* the transcription has already ended: nothing more can be injected */
#define BAD_BTRACE_FILE 100      /* the background trace is missing, unreadable or not a capture */
#define BAD_OTRACE_FILE 200      /* the output trace is missing or not writable */
#define BAD_THREAD_INIT 300      /* initialize_vei_library() called again before vei_finish() */
#define THREAD_KICKOFF_FAILED 400 /* start_vei_transcription(): already started, or a runtime failure */
#define FAILED_TO_BUFFER 500     /* the event's packets could not be queued */
#define BAD_EVENT_TYPE 600       /* an event this library does not generate */
/* Not in the original: */
#define NO_BACKGROUND_HOSTS 700  /* the background shows no two IP hosts to put a conversation between */
#define BAD_SPEED 800            /* VEI_SPEED is not a speed */

/* Event numbers, as in the original. */
#define EVENT_HTTP_HEAD_CONVERSATION 7890
#define EVENT_DNS_LOOKUP_CONVERSATION 7891
#define EVENT_TWITTER_DHS_DW_FETCH_CONVERSATION 7892
#define EVENT_TWITTER_LIBVEI_POST_CONVERSATION 7893
#define EVENT_NMAP_SYN_SCAN 7894
#define EVENT_SMTP_CONVERSATION 7895
#define EVENT_RSSFEED_CONVERSATION 7896
#define EVENT_SIP_SETUP_CONVERSATION 7897
#define EVENT_POST_PICTURE 7898
#define EVENT_SSH_SESSION 7899
#define EVENT_SSL_SESSION 7900
#define EVENT_TRACEROUTE_ICMP 7901
#define EVENT_PING_ICMP 7902

/* What inject_event() takes, and the stage line that generates each (pipeline/vei_events.cpp;
 * `src=`, `dst=`, `seed=` and `sport=` are added as the semantics above say). */
typedef enum _vei_event_type {
  VEI_HTTP_HEAD = EVENT_HTTP_HEAD_CONVERSATION,                /* http(method=HEAD, path=/) */
  VEI_DNS_LOOKUP = EVENT_DNS_LOOKUP_CONVERSATION,              /* dns(name=www.example.com, type=A) */
  VEI_TWITTER_DHS = EVENT_TWITTER_DHS_DW_FETCH_CONVERSATION,   /* http(method=GET, host=twitter.com, path=/dhs_dw, page=html) */
  VEI_TWITTER_LIBVEIPOST = EVENT_TWITTER_LIBVEI_POST_CONVERSATION, /* http(method=POST, host=twitter.com,
                                                                      path=/statuses/update, form="status=libvei+post") */
  VEI_NMAP = EVENT_NMAP_SYN_SCAN,                              /* synscan(ports=1-1024, open="22,80,443") */
  VEI_SMTP = EVENT_SMTP_CONVERSATION,                          /* smtp() */
  VEI_RSS_FETCH = EVENT_RSSFEED_CONVERSATION,                  /* http(method=GET, path=/feed.rss, page=rss) */
  VEI_SIP = EVENT_SIP_SETUP_CONVERSATION,                      /* sip() */
  VEI_POST_JPG = EVENT_POST_PICTURE,                           /* http(method=POST, path=/upload, image=true) */
  VEI_SSH_SESSION = EVENT_SSH_SESSION,                         /* ssh() */
  VEI_SSL_SESSION = EVENT_SSL_SESSION,                         /* tls(sni=www.example.com, version=1.2) */
  VEI_TRACEROUTE = EVENT_TRACEROUTE_ICMP,                      /* traceroute(hops=8) */
  /* One ICMP echo request, client to server (identifier 0x7665, TTL 64, 56 bytes of payload,
   * sequence number 1): icmp(count=1). IPv4 only. */
  VEI_PING = EVENT_PING_ICMP
} VEI_EVENT_TYPE;

/* Takes the two files the caller opened: the background capture to transcribe (pcap, µs or ns,
 * either byte order, or pcapng; opened for reading) and the output (opened for writing). Either
 * may be a regular file, a pipe or a FIFO; the output may also be a character device such as
 * /dev/null. A regular background file is read from its start whatever its FILE position; a
 * pipe is read from where it is (bytes the caller already read through this FILE* are lost).
 * The library owns both FILE*s from here on: vei_finish() closes them.
 *
 * Returns 0, or:
 *   -BAD_BTRACE_FILE  background_trace is NULL, not readable, or not a capture file
 *   -BAD_OTRACE_FILE  output_trace is NULL, not writable, or the same file as the background
 *   -BAD_THREAD_INIT  the library is already initialised (call vei_finish() first)
 *   -BAD_SPEED        the environment variable VEI_SPEED is set to something else than a speed
 * On failure the library stays uninitialised and neither file is closed. */
int initialize_vei_library(FILE* background_trace, FILE* output_trace);

/* Transcribes the background to the output, weaving in the injected events, and returns when
 * the background has ended and everything has been written (like the original, it blocks: call
 * inject_event() from another thread). Runs once per initialisation.
 *
 * Returns 0, or:
 *   -LIB_NOT_INITIALIZED   initialize_vei_library() has not succeeded
 *   -THREAD_KICKOFF_FAILED the transcription was already started (or has run), or it failed at
 *                          run time for another reason than the two below
 *   -BAD_BTRACE_FILE       the background turned out to be damaged (a truncated or corrupt
 *                          record: every valid record before it was written, with a warning)
 *   -BAD_OTRACE_FILE       the output could not be opened or written (disk full, closed pipe) */
int start_vei_transcription(void);

/* Injects the packets of `event`. Thread-safe; never blocks for long. Callable before the
 * transcription starts (the packets are kept and written at its start) or while it runs.
 *
 * Returns the number of packets injected (1 for VEI_PING), or:
 *   -LIB_NOT_INITIALIZED   the library is not initialised (never was, or vei_finish() ran)
 *   -LIB_NOT_TRANSCRIBING  the transcription has ended: nothing more can be written
 *   -BAD_EVENT_TYPE        not one of the events above; or its stage is not in this build of
 *                          veipipe; or the background's link type cannot frame the packets
 *                          (Ethernet, raw IP and Linux cooked captures can); or VEI_PING between
 *                          IPv6 hosts
 *   -NO_BACKGROUND_HOSTS   the background shows no two IP hosts (a link type that carries no IP,
 *                          no IP packet in its first 100,000, a single host): no conversation is
 *                          made up
 *   -FAILED_TO_BUFFER      out of memory, or the generator failed
 * All but the library-state errors print one line on stderr. The library-state errors are
 * checked first, as in the original. */
int inject_event(VEI_EVENT_TYPE event);

/* Shuts the library down: stops a transcription still running in another thread (what it has
 * merged is written), writes every packet inject_event() accepted, closes both FILE*s exactly
 * once, and returns the library to the uninitialised state. If the transcription was never
 * started, the output holds the file header and the packets injected so far (none of the
 * background). Safe to call at any time, any number of times. */
void vei_finish(void);

#ifdef __cplusplus
}
#endif

#endif /* VEIPIPE_PIPELINE_VEI_H */

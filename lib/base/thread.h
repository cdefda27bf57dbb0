/*
 * thread.h - what the helper threads (disk writer, commit, spare files,
 * token saves) share: they give way to the event loop for the CPU.
 */
#ifndef MAILSTOW_BASE_THREAD_H
#define MAILSTOW_BASE_THREAD_H

/*
 * Nice levels a helper runs below the thread that made it.  Measured on
 * the 64-mailbox bench (2 CPUs shared with the server): with the helpers
 * at the loop's priority the loop's timer waited up to 80 ms for a CPU,
 * at +10 the longest lateness stayed under 36 ms.
 */
#define THREAD_HELPER_NICE	10

/*
 * Called first by a helper thread: with the CPUs busy the event loop is
 * served first.  The helpers are paced by backpressure anyway, so they
 * cannot fall behind without the sessions waiting for them.  Best effort:
 * a failure leaves the priority as it was.
 */
void	thread_yield_to_loop(void);

#endif

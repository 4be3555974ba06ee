/*
 * p11scep run works on several profiles at once with threads that share one
 * token login. All of p11scep's own work, and every token operation, happens
 * under one lock; a thread lets go of it only while it waits for a server.
 * So token sessions, libp11 and our code are never entered by two threads at
 * once, and the waits for the CA overlap. Without worklock_enable() (every
 * single-shot command) the calls do nothing.
 */
#ifndef P11SCEP_WORKLOCK_H
#define P11SCEP_WORKLOCK_H

void worklock_enable(void);
void worklock_acquire(void);
void worklock_release(void);

#endif

#include "config.h"

#include <pthread.h>

#include "worklock.h"

static pthread_mutex_t work_mutex = PTHREAD_MUTEX_INITIALIZER;
static int enabled;

/* Called before any worker thread starts, so reading 'enabled' needs no lock. */
void worklock_enable(void)
{
	enabled = 1;
}

void worklock_acquire(void)
{
	if (enabled)
		pthread_mutex_lock(&work_mutex);
}

void worklock_release(void)
{
	if (enabled)
		pthread_mutex_unlock(&work_mutex);
}

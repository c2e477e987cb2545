"""What a user would write instead of pull(): the peers the fetch benchmark measures.

Each peer walks a batch the way the reference script does (pages, then each job's
record, then its result through the attachment endpoint) and writes one JSON file per
job, but with the concurrency a competent user would add:

* ``requests_threads`` — requests.Session + a ThreadPoolExecutor;
* ``aiohttp_dump`` — aiohttp with a semaphore of requests in flight.

Both are test-only dependencies. Neither retries, resumes, normalizes or keeps the key
away from the storage host: they are the floor pull() is compared with, not products.
"""

# ruff: noqa  (kept as published, apart from where the API lives)
"""The reference script from Playment's "Get job result" page, as customers run it.

It is the baseline of the benchmarks. It is kept as published except for where the
API lives and where its inputs come from (environment variables instead of literals
in the file): the same sequential loop, no session, no retries.
"""

import json
import os

import requests

API = os.environ["REFERENCE_BASE_URL"]  # was "https://api.playment.io"
x_api_key = os.environ["REFERENCE_API_KEY"]
project_id = os.environ["REFERENCE_PROJECT_ID"]
batch_id = os.environ["REFERENCE_BATCH_ID"]


def get_batch_job(project_id, batch_id, x_api_key, next_page_token):
    base_url = API + "/v1/projects/{}/batch/{}?page_token={}".format(
        project_id, batch_id, next_page_token
    )
    headers = {"x-api-key": x_api_key}
    response = requests.get(base_url, headers=headers)
    if response.status_code >= 500:
        raise Exception(response.text)
    if 400 <= response.status_code < 500:
        raise Exception(response.text)
    return response.json()


def get_job_result(project_id, job_id, x_api_key):
    base_url = API + "/v1/projects/{}/jobs/{}".format(project_id, job_id)
    headers = {"x-api-key": x_api_key}
    response = requests.get(base_url, headers=headers)
    if response.status_code >= 500:
        raise Exception(response.text)
    if 400 <= response.status_code < 500:
        raise Exception(response.text)
    return response.json()


def get_attachment(result_url, x_api_key):
    base_url = API + "/v1/attachments?url={}".format(result_url)
    headers = {"x-api-key": x_api_key}
    response = requests.get(base_url, headers=headers)
    if response.status_code >= 500:
        raise Exception(response.text)
    if 400 <= response.status_code < 500:
        raise Exception(response.text)
    return response.json()


if __name__ == "__main__":
    batch_res = get_batch_job(project_id, batch_id, x_api_key, '')
    jobs = batch_res['data']['jobs']
    while 'next_page_token' in batch_res['data'].keys():
        next_page_token = batch_res['data']['next_page_token']
        batch_res = get_batch_job(project_id, batch_id, x_api_key, next_page_token)
        jobs = jobs + batch_res['data']['jobs']
    # Set the desired folder struture/name here
    folder_name = batch_id
    for job in jobs:
        job_res = get_job_result(project_id, job['id'], x_api_key)
        job_annotation_result = get_attachment(job_res['data']['result'], x_api_key)
        # Set the filename here
        file_name = job['id'] + '.json'
        with open(os.path.join(folder_name, file_name), 'w') as outfile:
            json.dump(job_annotation_result, outfile)
        print(job['id'])

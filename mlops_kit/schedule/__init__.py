"""Scheduled retrain-and-redeploy (seed 003): schedules, the embedded scheduler, scale-out.

- :mod:`~mlops_kit.schedule.retrain`: what one run does (``mlops-kit retrain``);
- :mod:`~mlops_kit.schedule.store`: the schedules and their runs, durable in the state dir;
- :mod:`~mlops_kit.schedule.scheduler`: the background process that fires them;
- :mod:`~mlops_kit.schedule.cron`: cron expressions (a sixth, leading field for seconds);
- :mod:`~mlops_kit.schedule.scaleout`: the same schedule as a Kubernetes CronJob and a GitHub
  Actions workflow; :mod:`~mlops_kit.schedule.kfp_pipeline`: the run for Kubeflow Pipelines.
"""

"""What the API and the workers share: settings, models, errors, Redis keys and the job store."""

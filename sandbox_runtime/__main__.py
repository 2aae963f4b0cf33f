"""Entry point: `python3 -m sandbox_runtime` (the container's command)."""

from sandbox_runtime.server import main

if __name__ == "__main__":
    main()

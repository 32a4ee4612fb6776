"""A Hugging Face Space for a kemd-emotion checkpoint: the same app as `kemd-emotion demo`.

The model comes from the Space's variable KEMD_EMOTION_MODEL (a Hub id such as `me/kemd-add`, or a folder).
Run it locally with `KEMD_EMOTION_MODEL=runs/emotion/add/final python examples/space/app.py`.
"""

from kemd_emotion.demo import main

if __name__ == "__main__":
    main()

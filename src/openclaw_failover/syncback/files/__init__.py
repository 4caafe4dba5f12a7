"""The workspace-files half of sync-back.

``tree`` lists and hashes a folder (with the takeover manifest), ``sync`` sends
what the standby changed to the primary over rsync or SFTP, backing up what it
replaces.
"""

"""Vidéo-verbalisation (docs/verbalisation.md): what the law lets an agent note from the live image
(the offence list), who may note what (powers), plate formats, the messages between the gateway and
the verbalisation service."""

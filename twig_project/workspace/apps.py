from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "twig_project.workspace"
    label = "workspace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from twig_auth.authz import registry

        # agents: view < use < edit < manage; deploy is granted on its own (the production approver)
        registry.register("agent", "workspace.Agent", actions=("view", "use", "edit", "manage", "deploy"),
                          implies={"use": ["view"], "edit": ["use"], "manage": ["edit"]},
                          owner_field="created_by", modifier_field="updated_by")
        # data sources: connect, edit and process each imply view
        registry.register("data_source", "workspace.DataSource", actions=("view", "connect", "edit", "process"),
                          implies={"connect": ["view"], "edit": ["view"], "process": ["view"]},
                          owner_field="created_by")

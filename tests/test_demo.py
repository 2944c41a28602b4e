"""`qalitel demo` (what `make run` calls) prepares the embedded default once, then reuses it."""

from qalitel import create_app


def test_demo_created_once_and_serves_login(tmp_path):
    app = create_app({"instance_dir": tmp_path / "instance", "tenant_server_url": ""})
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "admin@demo.example" in first.output and "user@demo.example" in first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "exists" in second.output
    assert "admin@demo.example" not in second.output
    assert app.test_client().get("/t/demo/login").status_code == 200
    assert (tmp_path / "instance" / "tenants" / "demo.sqlite3").exists()
    assert (tmp_path / "instance" / "platform.sqlite3").exists()
    with app.app_context():
        app.extensions["qalitel_engines"].clear()

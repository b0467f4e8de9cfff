@echo off
rem epost-shipper: stop the Windows service `epost-shipper` (it finishes what is in flight and
rem writes its checkpoint) and remove it. Needs an elevated prompt (Run as administrator).
rem The state folder (checkpoints, the service log; default C:\ProgramData\epost-shipper) is
rem kept, so that a new install does not send everything again; delete it to forget.
setlocal
set "EXE=%~dp0epost-shipper.exe"

net session >nul 2>&1
if errorlevel 1 goto not_admin

echo == epost-shipper service uninstall
"%EXE%" service uninstall
if errorlevel 1 goto failed
sc query epost-shipper >nul 2>&1
if not errorlevel 1 (
    echo uninstall.cmd: the service is marked for deletion; close services.msc to let it go.
)
echo uninstall.cmd: done. The state folder is kept (delete C:\ProgramData\epost-shipper to forget what was shipped).
set "RC=0"
goto end_rc

:failed
echo uninstall.cmd: the service could not be removed [exit %errorlevel%]; see the message above.
set "RC=1"
goto end_rc

:not_admin
echo uninstall.cmd: this needs an elevated prompt (right-click, "Run as administrator").
if /i "%~1"=="/elevated" goto no_elevation
where powershell >nul 2>&1
if errorlevel 1 goto no_elevation
echo uninstall.cmd: asking Windows for administrator rights (UAC) ...
powershell -NoProfile -ExecutionPolicy Bypass -Command "Start-Process -FilePath '%~f0' -ArgumentList '/elevated' -Verb RunAs" >nul 2>&1
if errorlevel 1 goto no_elevation
exit /b 0
:no_elevation
echo uninstall.cmd: not elevated; nothing was removed.
set "RC=1"

:end_rc
if /i "%~1"=="/elevated" pause
exit /b %RC%
